namespace NvDinoPipeline.Ssl.Masking;

/// <summary>
/// Block-wise patch masking (BEiT, Bao et al. 2022; DINOv2 <c>data/masking.py</c>): masks are built from
/// random rectangles of at least <see cref="MinNumPatches"/> patches with log-uniform aspect ratio,
/// added until the requested count is reached (never exceeded; it may stop short when no rectangle fits).
/// </summary>
public sealed class MaskingGenerator
{
    private readonly double logAspectMin;
    private readonly double logAspectMax;

    /// <param name="height">Patch grid height.</param>
    /// <param name="width">Patch grid width.</param>
    /// <param name="minNumPatches">Smallest rectangle area (DINOv2: 4).</param>
    /// <param name="maxNumPatches">Largest area one rectangle may add (DINOv2's trainer: half the grid).</param>
    /// <param name="minAspect">Smallest aspect ratio h/w (DINOv2: 0.3).</param>
    /// <param name="maxAspect">Largest aspect ratio; 1 / <paramref name="minAspect"/> when null.</param>
    public MaskingGenerator(int height, int width, int minNumPatches = 4, double? maxNumPatches = null, double minAspect = 0.3, double? maxAspect = null)
    {
        if (height <= 0) throw new ArgumentOutOfRangeException(nameof(height), height, "must be positive");
        if (width <= 0) throw new ArgumentOutOfRangeException(nameof(width), width, "must be positive");
        if (minNumPatches < 1) throw new ArgumentOutOfRangeException(nameof(minNumPatches), minNumPatches, "must be at least 1");
        if (!(minAspect > 0)) throw new ArgumentOutOfRangeException(nameof(minAspect), minAspect, "must be positive");
        var max = maxAspect ?? 1 / minAspect;
        if (!(max >= minAspect)) throw new ArgumentOutOfRangeException(nameof(maxAspect), maxAspect, $"must be at least minAspect {minAspect}");
        var maxPatches = maxNumPatches ?? 0.5 * height * width;
        if (!(maxPatches >= 1)) throw new ArgumentOutOfRangeException(nameof(maxNumPatches), maxNumPatches, "must be at least 1");

        Height = height;
        Width = width;
        MinNumPatches = minNumPatches;
        MaxNumPatches = maxPatches;
        logAspectMin = Math.Log(minAspect);
        logAspectMax = Math.Log(max);
    }

    public int Height { get; }

    public int Width { get; }

    public int NumPatches => Height * Width;

    public int MinNumPatches { get; }

    public double MaxNumPatches { get; }

    /// <summary>A mask of the patch grid, row-major [Height·Width], with at most <paramref name="numMaskingPatches"/> true entries.</summary>
    public bool[] Generate(int numMaskingPatches, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (numMaskingPatches < 0 || numMaskingPatches > NumPatches)
            throw new ArgumentOutOfRangeException(nameof(numMaskingPatches), numMaskingPatches, $"must be in [0, {NumPatches}]");

        var mask = new bool[NumPatches];
        var count = 0;
        while (count < numMaskingPatches)
        {
            var maxMaskPatches = Math.Min(numMaskingPatches - count, MaxNumPatches);
            var delta = AddBlock(mask, maxMaskPatches, random);
            if (delta == 0)
                break;
            count += delta;
        }
        return mask;
    }

    private int AddBlock(bool[] mask, double maxMaskPatches, Random random)
    {
        var delta = 0;
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var targetArea = Uniform(random, MinNumPatches, maxMaskPatches);
            var aspect = Math.Exp(Uniform(random, logAspectMin, logAspectMax));
            var h = (int)Math.Round(Math.Sqrt(targetArea * aspect));
            var w = (int)Math.Round(Math.Sqrt(targetArea / aspect));
            if (w < Width && h < Height)
            {
                var top = random.Next(0, Height - h + 1);
                var left = random.Next(0, Width - w + 1);
                var alreadyMasked = 0;
                for (var i = top; i < top + h; i++)
                    for (var j = left; j < left + w; j++)
                        if (mask[i * Width + j]) alreadyMasked++;

                var added = h * w - alreadyMasked;
                if (added > 0 && added <= maxMaskPatches)
                {
                    for (var i = top; i < top + h; i++)
                        for (var j = left; j < left + w; j++)
                        {
                            if (!mask[i * Width + j])
                            {
                                mask[i * Width + j] = true;
                                delta++;
                            }
                        }
                }
            }
            if (delta > 0)
                break;
        }
        return delta;
    }

    // Python's random.uniform(a, b): a + (b - a)·U, also when b < a.
    private static double Uniform(Random random, double a, double b) => a + (b - a) * random.NextDouble();
}
