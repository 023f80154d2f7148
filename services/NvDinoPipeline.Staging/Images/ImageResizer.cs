namespace NvDinoPipeline.Staging.Images;

/// <summary>
/// Scales interleaved RGB down so the longer side fits. A whole-number box average first brings the image
/// within a factor of two of the target, then bilinear interpolation (pixel centres at +0.5, as PIL and
/// OpenCV do) lands on the exact size: plain bilinear alone would alias badly at factors of 4 and more.
/// </summary>
internal static class ImageResizer
{
    /// <summary>The size with the longer side at most <paramref name="maxSide"/>, aspect ratio kept, each side at least 1.</summary>
    public static (int Width, int Height) FitWithin(int width, int height, int maxSide)
    {
        var longer = Math.Max(width, height);
        if (longer <= maxSide)
        {
            return (width, height);
        }
        var scale = (double)maxSide / longer;
        return width >= height
            ? (maxSide, Math.Max(1, (int)Math.Round(height * scale)))
            : (Math.Max(1, (int)Math.Round(width * scale)), maxSide);
    }

    public static byte[] Resize(byte[] rgb, int width, int height, int targetWidth, int targetHeight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rgb.Length, width * height * 3, nameof(rgb));
        if (width == targetWidth && height == targetHeight)
        {
            return rgb;
        }
        var factorX = Math.Max(1, width / targetWidth);
        var factorY = Math.Max(1, height / targetHeight);
        if (factorX > 1 || factorY > 1)
        {
            rgb = BoxReduce(rgb, width, height, factorX, factorY, out width, out height);
        }
        return Bilinear(rgb, width, height, targetWidth, targetHeight);
    }

    private static byte[] BoxReduce(byte[] source, int width, int height, int factorX, int factorY, out int reducedWidth, out int reducedHeight)
    {
        var outWidth = (width + factorX - 1) / factorX;
        var outHeight = (height + factorY - 1) / factorY;
        var output = GC.AllocateUninitializedArray<byte>(outWidth * outHeight * 3);
        var sums = new int[outWidth * 3];
        for (var outY = 0; outY < outHeight; outY++)
        {
            Array.Clear(sums);
            var rowStart = outY * factorY;
            var rowEnd = Math.Min(height, rowStart + factorY);
            for (var y = rowStart; y < rowEnd; y++)
            {
                var row = source.AsSpan(y * width * 3, width * 3);
                for (var x = 0; x < width; x++)
                {
                    var cell = x / factorX * 3;
                    sums[cell] += row[x * 3];
                    sums[cell + 1] += row[x * 3 + 1];
                    sums[cell + 2] += row[x * 3 + 2];
                }
            }
            var rows = rowEnd - rowStart;
            var outRow = output.AsSpan(outY * outWidth * 3, outWidth * 3);
            for (var outX = 0; outX < outWidth; outX++)
            {
                var columns = Math.Min(width, (outX + 1) * factorX) - outX * factorX;
                var count = rows * columns;
                for (var c = 0; c < 3; c++)
                {
                    outRow[outX * 3 + c] = (byte)((sums[outX * 3 + c] + count / 2) / count);
                }
            }
        }
        reducedWidth = outWidth;
        reducedHeight = outHeight;
        return output;
    }

    private static byte[] Bilinear(byte[] source, int width, int height, int targetWidth, int targetHeight)
    {
        var (x0, x1, wx) = Taps(width, targetWidth);
        var (y0, y1, wy) = Taps(height, targetHeight);
        var output = GC.AllocateUninitializedArray<byte>(targetWidth * targetHeight * 3);
        var stride = width * 3;
        for (var y = 0; y < targetHeight; y++)
        {
            var top = source.AsSpan(y0[y] * stride, stride);
            var bottom = source.AsSpan(y1[y] * stride, stride);
            var fy = wy[y];
            var outRow = output.AsSpan(y * targetWidth * 3, targetWidth * 3);
            for (var x = 0; x < targetWidth; x++)
            {
                var left = x0[x] * 3;
                var right = x1[x] * 3;
                var fx = wx[x];
                for (var c = 0; c < 3; c++)
                {
                    var upper = top[left + c] + (top[right + c] - top[left + c]) * fx;
                    var lower = bottom[left + c] + (bottom[right + c] - bottom[left + c]) * fx;
                    outRow[x * 3 + c] = (byte)(upper + (lower - upper) * fy + 0.5f);
                }
            }
        }
        return output;
    }

    private static (int[] Low, int[] High, float[] Weight) Taps(int sourceSize, int targetSize)
    {
        var low = new int[targetSize];
        var high = new int[targetSize];
        var weight = new float[targetSize];
        var scale = (double)sourceSize / targetSize;
        for (var i = 0; i < targetSize; i++)
        {
            var position = Math.Clamp((i + 0.5) * scale - 0.5, 0, sourceSize - 1);
            var floor = (int)position;
            low[i] = floor;
            high[i] = Math.Min(floor + 1, sourceSize - 1);
            weight[i] = (float)(position - floor);
        }
        return (low, high, weight);
    }
}
