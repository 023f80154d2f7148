namespace NvDinoPipeline.Deployment;

/// <summary>Turns decoded RGB images into the model's normalised CHW float input.</summary>
public sealed class ImagePreprocessor(Preprocessing preprocessing)
{
    private readonly float[] _scale = [.. Enumerable.Range(0, 3).Select(c => 1f / (255f * preprocessing.Std[c]))];
    private readonly float[] _shift = [.. Enumerable.Range(0, 3).Select(c => -preprocessing.Mean[c] / preprocessing.Std[c])];

    public int Height => preprocessing.Height;

    public int Width => preprocessing.Width;

    /// <summary>Floats one image takes: 3 × height × width.</summary>
    public int ImageSize => 3 * preprocessing.Height * preprocessing.Width;

    /// <summary>
    /// Writes one image (interleaved 8-bit RGB, <paramref name="width"/>×<paramref name="height"/>)
    /// into <paramref name="destination"/> as normalised CHW floats.
    /// </summary>
    public void Preprocess(ReadOnlySpan<byte> rgb, int width, int height, Span<float> destination)
    {
        if (width <= 0 || height <= 0 || rgb.Length < width * height * 3)
        {
            throw new ArgumentException($"An image of {width}×{height} needs {width * height * 3} RGB bytes; got {rgb.Length}.", nameof(rgb));
        }
        if (destination.Length < ImageSize)
        {
            throw new ArgumentException($"The destination holds {destination.Length} floats; one image needs {ImageSize}.", nameof(destination));
        }
        int outH = preprocessing.Height, outW = preprocessing.Width, plane = outH * outW;
        var scaleX = (float)width / outW;
        var scaleY = (float)height / outH;
        Span<int> x0 = outW <= 4096 ? stackalloc int[outW] : new int[outW];
        Span<int> x1 = outW <= 4096 ? stackalloc int[outW] : new int[outW];
        Span<float> fx = outW <= 4096 ? stackalloc float[outW] : new float[outW];
        for (var x = 0; x < outW; x++)
        {
            var sx = Math.Clamp((x + 0.5f) * scaleX - 0.5f, 0, width - 1);
            x0[x] = (int)sx;
            x1[x] = Math.Min(x0[x] + 1, width - 1);
            fx[x] = sx - x0[x];
        }
        for (var y = 0; y < outH; y++)
        {
            var sy = Math.Clamp((y + 0.5f) * scaleY - 0.5f, 0, height - 1);
            var y0 = (int)sy;
            var y1 = Math.Min(y0 + 1, height - 1);
            var fy = sy - y0;
            var row0 = rgb.Slice(y0 * width * 3, width * 3);
            var row1 = rgb.Slice(y1 * width * 3, width * 3);
            for (var x = 0; x < outW; x++)
            {
                int a = x0[x] * 3, b = x1[x] * 3;
                var wx = fx[x];
                for (var c = 0; c < 3; c++)
                {
                    var top = row0[a + c] + (row0[b + c] - row0[a + c]) * wx;
                    var bottom = row1[a + c] + (row1[b + c] - row1[a + c]) * wx;
                    var value = top + (bottom - top) * fy;
                    destination[c * plane + y * outW + x] = value * _scale[c] + _shift[c];
                }
            }
        }
    }
}
