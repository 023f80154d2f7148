using System.Buffers;
using NvDinoPipeline.Staging.Output;

namespace NvDinoPipeline.Staging.Sources;

/// <summary>One file of the source, read into a buffer rented from <see cref="ArrayPool{T}.Shared"/>; whoever
/// consumes it returns the buffer.</summary>
internal sealed record SourceFile(string RelativePath, byte[] Buffer, int Length);

/// <summary>What the readers of a source share during one staging.</summary>
internal sealed class SourceReading(StagingOptions options, StagingReport report, StagingCounters counters, string scratchDirectory)
{
    public StagingOptions Options => options;

    public StagingReport Report => report;

    public StagingCounters Counters => counters;

    /// <summary>Local folder for downloads the source needs (a zip archive from S3).</summary>
    public string ScratchDirectory => scratchDirectory;

    /// <summary>
    /// The clean relative path of a file that may be read, or null after reporting why it is skipped (an unsafe
    /// name, or a size above <see cref="StagingOptions.MaxFileBytes"/>, which is refused before reading).
    /// </summary>
    public string? Admit(string name, long size)
    {
        var relative = EntryPath.Normalize(name, out var reason);
        if (relative is null)
        {
            report.Skip(name, SkipReason.UnsafePath, reason);
            return null;
        }
        if (size > options.MaxFileBytes)
        {
            report.Skip(relative, SkipReason.TooLarge,
                $"the file has {size} bytes; {StagingOptions.SectionName}:{nameof(StagingOptions.MaxFileBytes)} is {options.MaxFileBytes}");
            return null;
        }
        return relative;
    }

    /// <summary>Reads exactly <paramref name="length"/> bytes into a rented buffer; null when the stream ends early.</summary>
    public static async Task<byte[]?> ReadExactlyAsync(Stream stream, int length, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
        try
        {
            var read = await stream.ReadAtLeastAsync(buffer.AsMemory(0, length), length, throwOnEndOfStream: false, cancellationToken);
            if (read < length)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return null;
            }
            return buffer;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}

/// <summary>Where the images come from: an archive, a local folder or an S3 prefix.</summary>
internal abstract class DatasetSource(Uri uri) : IAsyncDisposable
{
    public Uri Uri => uri;

    /// <summary>What the source is, for messages: tar.gz, tar, zip, folder or prefix.</summary>
    public abstract string Kind { get; }

    /// <summary>Identifies the source's content for the staging cache: the archive's SHA-256 or ETag, or for a
    /// folder or prefix a hash over every listed (path, size, modification time or ETag).</summary>
    public abstract string Fingerprint { get; }

    /// <summary>Total bytes to read, when known before reading.</summary>
    public abstract long? TotalBytes { get; }

    /// <summary>Files in source order; skipped entries are reported to <see cref="SourceReading.Report"/> instead.</summary>
    public abstract IAsyncEnumerable<SourceFile> ReadAsync(SourceReading reading, CancellationToken cancellationToken);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
