using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Staging;

/// <summary>Limits and output settings of dataset staging, bound to the configuration section <c>Staging</c>.</summary>
public sealed class StagingOptions
{
    public const string SectionName = "Staging";

    private const long MiB = 1024 * 1024;

    /// <summary>Longer side of a staged image; larger images are scaled down (aspect kept), smaller ones are kept as they are.</summary>
    [Range(8, 16384)]
    public int MaxSide { get; set; } = 512;

    /// <summary>An image whose header claims a wider or taller picture is skipped before it is decoded.</summary>
    [Range(1, 1 << 24)]
    public int MaxImageSide { get; set; } = 16384;

    /// <summary>An image whose header claims more pixels is skipped before it is decoded (a decoder holds about 6 bytes per pixel).</summary>
    [Range(1, 1L << 32)]
    public long MaxImagePixels { get; set; } = 100_000_000;

    /// <summary>A file larger than this is skipped without being read into memory.</summary>
    [Range(1, 2L * 1024 * MiB - 1)]
    public long MaxFileBytes { get; set; } = 256 * MiB;

    /// <summary>An archive or folder with more entries (files, folders, links) fails the job.</summary>
    [Range(1, int.MaxValue)]
    public int MaxEntries { get; set; } = 10_000_000;

    /// <summary>Unpacking more bytes than this fails the job (declared sizes are checked before any byte is read).</summary>
    [Range(1, long.MaxValue)]
    public long MaxUncompressedBytes { get; set; } = 1024L * 1024 * MiB;

    /// <summary>Unpacked bytes per archive byte above which the job fails as a likely decompression bomb. Image archives
    /// stay far below it: JPEG and PNG do not compress, and tar headers of tiny files reach about 20.</summary>
    [Range(2.0, 1e9)]
    public double MaxCompressionRatio { get; set; } = 250;

    /// <summary>The ratio is checked once this many bytes were unpacked, so a tiny archive of tiny files is never judged by it.</summary>
    [Range(0, long.MaxValue)]
    public long CompressionRatioGraceBytes { get; set; } = 64 * MiB;

    /// <summary>Images decoded at once; 0 uses every core.</summary>
    [Range(0, 256)]
    public int DecodeParallelism { get; set; }

    /// <summary>Undecoded file bytes held between the reader and the decoders (a single larger file still passes alone).</summary>
    [Range(1 * MiB, 64L * 1024 * MiB)]
    public long MaxBufferedBytes { get; set; } = 256 * MiB;

    /// <summary>Objects of an S3 prefix fetched at once.</summary>
    [Range(1, 256)]
    public int DownloadParallelism { get; set; } = 8;

    /// <summary>A shard is closed once it holds this many bytes of pixels.</summary>
    [Range(1 * MiB, 64L * 1024 * MiB)]
    public long ShardMaxBytes { get; set; } = 256 * MiB;

    /// <summary>How often progress (bytes and files read, images staged) is reported while staging.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(1);

    internal int EffectiveDecodeParallelism => DecodeParallelism > 0 ? DecodeParallelism : Environment.ProcessorCount;
}
