using System.Runtime.Intrinsics;
using System.Text.Json;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Staging.Images;

namespace NvDinoPipeline.Staging.Output;

/// <summary>Per-channel sums and sums of squares of one staged image, computed by the decoder that staged it.</summary>
internal readonly record struct ChannelSums(ulong Red, ulong Green, ulong Blue, ulong RedSquares, ulong GreenSquares, ulong BlueSquares)
{
    // 96 bytes (three 32-byte vectors) hold 32 whole pixels, so each vector lane always sees the same channel.
    private const int BlockBytes = 96;

    // Per-lane 32-bit totals of squares overflow after 66,052 blocks; fold into 64 bits well before.
    private const int BlocksPerFold = 65_536;

    public static ChannelSums Of(ReadOnlySpan<byte> rgb)
    {
        Span<ulong> sums = stackalloc ulong[3];
        Span<ulong> squares = stackalloc ulong[3];
        var blocks = Vector256.IsHardwareAccelerated ? rgb.Length / BlockBytes : 0;
        for (var first = 0; first < blocks; first += BlocksPerFold)
        {
            AddBlocks(rgb.Slice(first * BlockBytes, Math.Min(BlocksPerFold, blocks - first) * BlockBytes), sums, squares);
        }
        for (var i = blocks * BlockBytes; i < rgb.Length; i++)
        {
            uint value = rgb[i];
            sums[i % 3] += value;
            squares[i % 3] += value * value;
        }
        return new ChannelSums(sums[0], sums[1], sums[2], squares[0], squares[1], squares[2]);
    }

    private static void AddBlocks(ReadOnlySpan<byte> blocks, Span<ulong> sums, Span<ulong> squares)
    {
        Span<Vector256<uint>> laneSums = stackalloc Vector256<uint>[12];
        Span<Vector256<uint>> laneSquares = stackalloc Vector256<uint>[12];
        for (var offset = 0; offset < blocks.Length; offset += BlockBytes)
        {
            for (var v = 0; v < 3; v++)
            {
                var bytes = Vector256.Create(blocks.Slice(offset + v * 32, 32));
                var (low, high) = Vector256.Widen(bytes);
                var (a, b) = Vector256.Widen(low);
                var (c, d) = Vector256.Widen(high);
                laneSums[v * 4] += a;
                laneSums[v * 4 + 1] += b;
                laneSums[v * 4 + 2] += c;
                laneSums[v * 4 + 3] += d;
                laneSquares[v * 4] += a * a;
                laneSquares[v * 4 + 1] += b * b;
                laneSquares[v * 4 + 2] += c * c;
                laneSquares[v * 4 + 3] += d * d;
            }
        }
        for (var k = 0; k < 12; k++)
        {
            for (var lane = 0; lane < 8; lane++)
            {
                // Accumulator k holds bytes (k / 4) * 32 + (k % 4) * 8 + lane of every block.
                var channel = ((k / 4) * 32 + (k % 4) * 8 + lane) % 3;
                sums[channel] += laneSums[k][lane];
                squares[channel] += laneSquares[k][lane];
            }
        }
    }
}

/// <summary>
/// Counts, original sizes and per-channel mean and standard deviation of a staged dataset. Means and
/// deviations are over the staged pixels scaled to [0, 1], the numbers a loader's Normalize step takes.
/// </summary>
internal sealed class DatasetStatistics
{
    // Histogram of the original longer side: [1, 32), [32, 64), ..., [2048, 4096), [4096, ∞).
    private static readonly int[] BinEdges = [32, 64, 128, 256, 512, 1024, 2048, 4096];

    private readonly long[] _histogram = new long[BinEdges.Length + 1];
    private readonly SortedDictionary<string, int> _formats = new(StringComparer.Ordinal);
    private readonly ulong[] _sums = new ulong[3];
    private readonly ulong[] _squares = new ulong[3];
    private int _minWidth = int.MaxValue;
    private int _minHeight = int.MaxValue;
    private int _maxWidth;
    private int _maxHeight;
    private long _widthSum;
    private long _heightSum;

    public int ImageCount { get; private set; }

    public long SourceBytes { get; private set; }

    public long StagedPixels { get; private set; }

    public void Add(StagedImage image, int sourceBytes, ChannelSums sums)
    {
        ImageCount++;
        SourceBytes += sourceBytes;
        StagedPixels += (long)image.StagedWidth * image.StagedHeight;
        var format = image.Format.Name();
        _formats[format] = _formats.GetValueOrDefault(format) + 1;
        var longer = Math.Max(image.Width, image.Height);
        var bin = 0;
        while (bin < BinEdges.Length && longer >= BinEdges[bin])
        {
            bin++;
        }
        _histogram[bin]++;
        _minWidth = Math.Min(_minWidth, image.Width);
        _maxWidth = Math.Max(_maxWidth, image.Width);
        _minHeight = Math.Min(_minHeight, image.Height);
        _maxHeight = Math.Max(_maxHeight, image.Height);
        _widthSum += image.Width;
        _heightSum += image.Height;
        _sums[0] += sums.Red;
        _sums[1] += sums.Green;
        _sums[2] += sums.Blue;
        _squares[0] += sums.RedSquares;
        _squares[1] += sums.GreenSquares;
        _squares[2] += sums.BlueSquares;
    }

    public double[] ChannelMean() => [.. _sums.Select(s => StagedPixels == 0 ? 0 : s / 255.0 / StagedPixels)];

    public double[] ChannelStd()
    {
        var mean = ChannelMean();
        return [.. _squares.Select((s, c) => StagedPixels == 0 ? 0 : Math.Sqrt(Math.Max(0, s / (255.0 * 255.0) / StagedPixels - mean[c] * mean[c])))];
    }

    public void Write(Utf8JsonWriter json, StagingReport report, int maxSide)
    {
        json.WriteStartObject();
        json.WriteNumber("imageCount", ImageCount);
        json.WriteNumber("skippedCount", report.SkippedCount);
        json.WriteNumber("duplicateCount", report.DuplicateCount);
        json.WriteNumber("sourceBytes", SourceBytes);
        json.WriteNumber("maxSide", maxSide);
        json.WriteNumber("stagedPixels", StagedPixels);
        json.WriteStartObject("formats");
        foreach (var (format, count) in _formats)
        {
            json.WriteNumber(format, count);
        }
        json.WriteEndObject();
        json.WriteStartObject("skippedByReason");
        foreach (var (reason, count) in report.CountsByReason())
        {
            json.WriteNumber(reason, count);
        }
        json.WriteEndObject();
        json.WriteStartArray("sizeHistogram");
        for (var bin = 0; bin < _histogram.Length; bin++)
        {
            json.WriteStartObject();
            json.WriteNumber("minLongerSide", bin == 0 ? 1 : BinEdges[bin - 1]);
            if (bin < BinEdges.Length)
            {
                json.WriteNumber("maxLongerSide", BinEdges[bin] - 1);
            }
            else
            {
                json.WriteNull("maxLongerSide");
            }
            json.WriteNumber("count", _histogram[bin]);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        WriteRange(json, "width", _minWidth, _maxWidth, _widthSum);
        WriteRange(json, "height", _minHeight, _maxHeight, _heightSum);
        json.WriteStartArray("channelMean");
        foreach (var value in ChannelMean())
        {
            json.WriteNumberValue(Math.Round(value, 6));
        }
        json.WriteEndArray();
        json.WriteStartArray("channelStd");
        foreach (var value in ChannelStd())
        {
            json.WriteNumberValue(Math.Round(value, 6));
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private void WriteRange(Utf8JsonWriter json, string name, int min, int max, long sum)
    {
        json.WriteStartObject(name);
        json.WriteNumber("min", ImageCount == 0 ? 0 : min);
        json.WriteNumber("max", max);
        json.WriteNumber("mean", ImageCount == 0 ? 0 : Math.Round(sum / (double)ImageCount, 3));
        json.WriteEndObject();
    }
}
