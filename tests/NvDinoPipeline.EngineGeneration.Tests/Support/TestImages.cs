namespace NvDinoPipeline.EngineGeneration.Tests.Support;

/// <summary>Generated RGB pictures: a few coloured shapes on a gradient, different for every seed.</summary>
internal static class TestImages
{
    public static byte[] Rgb(int width, int height, int seed)
    {
        var random = new Random(seed);
        var rgb = new byte[width * height * 3];
        var background = Enumerable.Range(0, 3).Select(_ => random.Next(30, 220)).ToArray();
        var gradient = Enumerable.Range(0, 3).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var shapes = Enumerable.Range(0, 3).Select(_ => (
            X: random.Next(width), Y: random.Next(height), R: random.Next(3, Math.Max(4, width / 3)),
            Colour: Enumerable.Range(0, 3).Select(_ => random.Next(256)).ToArray(), Square: random.Next(2) == 0)).ToArray();
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    double value = background[c] + gradient[c] * (x + y) * 2;
                    foreach (var s in shapes)
                    {
                        var inside = s.Square
                            ? Math.Abs(x - s.X) <= s.R && Math.Abs(y - s.Y) <= s.R
                            : (x - s.X) * (x - s.X) + (y - s.Y) * (y - s.Y) <= s.R * s.R;
                        if (inside)
                        {
                            value = s.Colour[c];
                        }
                    }

                    rgb[(y * width + x) * 3 + c] = (byte)Math.Clamp(value + random.Next(-8, 9), 0, 255);
                }
            }
        }

        return rgb;
    }
}
