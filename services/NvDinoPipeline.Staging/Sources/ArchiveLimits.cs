using NvDinoPipeline.Hosting.Workers;

namespace NvDinoPipeline.Staging.Sources;

/// <summary>
/// The caps that stop archive bombs: entry count, declared and actually unpacked bytes, and the ratio of
/// unpacked to packed bytes. Each is checked as the archive is read, so a bomb fails after a few megabytes
/// rather than after filling memory or disk. Breaking a cap fails the job with a message naming the setting.
/// </summary>
internal sealed class ArchiveLimits(StagingOptions options, Uri source)
{
    private int _entries;
    private long _declaredBytes;

    public int Entries => _entries;

    public void CountEntry()
    {
        if (++_entries > options.MaxEntries)
        {
            throw new StageInputException(
                $"Source '{source}' has more than {options.MaxEntries} entries ({StagingOptions.SectionName}:{nameof(StagingOptions.MaxEntries)}); refusing to stage it.");
        }
    }

    /// <summary>Adds an entry's declared size; fails before its bytes are read when the total is already too large.</summary>
    public void Declare(string entryName, long bytes)
    {
        _declaredBytes += Math.Max(0, bytes);
        if (_declaredBytes > options.MaxUncompressedBytes)
        {
            throw new StageInputException(
                $"Source '{source}' declares more than {options.MaxUncompressedBytes} unpacked bytes by entry '{entryName}' " +
                $"({StagingOptions.SectionName}:{nameof(StagingOptions.MaxUncompressedBytes)}); refusing to unpack it.");
        }
    }

    /// <summary>Checks what has actually been unpacked so far against the byte cap and, when compressed, the ratio cap.</summary>
    public void CheckUnpacked(long unpackedBytes, long packedBytes, bool compressed)
    {
        if (unpackedBytes > options.MaxUncompressedBytes)
        {
            throw new StageInputException(
                $"Source '{source}' unpacks to more than {options.MaxUncompressedBytes} bytes " +
                $"({StagingOptions.SectionName}:{nameof(StagingOptions.MaxUncompressedBytes)}); stopped after {packedBytes} archive bytes.");
        }
        if (compressed && unpackedBytes > options.CompressionRatioGraceBytes
            && unpackedBytes > options.MaxCompressionRatio * Math.Max(1, packedBytes))
        {
            throw new StageInputException(
                $"Source '{source}' looks like a decompression bomb: {packedBytes} archive bytes unpacked to {unpackedBytes} " +
                $"(ratio {unpackedBytes / (double)Math.Max(1, packedBytes):0}:1, above {StagingOptions.SectionName}:{nameof(StagingOptions.MaxCompressionRatio)} = {options.MaxCompressionRatio}); stopped reading it.");
        }
    }
}
