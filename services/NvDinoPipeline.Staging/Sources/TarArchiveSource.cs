using System.Buffers.Binary;
using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Staging.Output;

namespace NvDinoPipeline.Staging.Sources;

/// <summary>
/// A .tar or .tar.gz read in one pass straight from the store's stream: gzip inflates while the download
/// continues, and each entry's bytes go from the tar reader into memory without touching the disk.
/// </summary>
internal sealed class TarArchiveSource(Uri uri, string fingerprint, long? size, CountingReadStream packed, Stream source, bool gzip)
    : DatasetSource(uri)
{
    private string? _lastEntry;

    public override string Kind => gzip ? "tar.gz" : "tar";

    public override string Fingerprint => fingerprint;

    public override long? TotalBytes => size;

    public override async IAsyncEnumerable<SourceFile> ReadAsync(SourceReading reading, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var limits = new ArchiveLimits(reading.Options, Uri);
        packed.Counters = reading.Counters;
        reading.Counters.AddSourceBytes(packed.BytesRead);
        // Buffers on both sides of the inflater: the store's stream is read in large blocks, and the tar reader's
        // many 512-byte header reads are served from memory instead of each going through the whole stream chain.
        Stream unpacked = gzip ? new GZipStream(new BufferedStream(source, 1 << 20), CompressionMode.Decompress) : source;
        await using var guard = new UnpackGuardStream(unpacked, packed, limits, gzip);
        await using var buffered = new BufferedStream(guard, 1 << 16);
        await using var tar = new TarReader(buffered, leaveOpen: true);
        while (await NextAsync(tar, limits, reading, cancellationToken) is { } step)
        {
            if (step.File is { } file)
            {
                yield return file;
            }
        }
        await DrainAsync(buffered, cancellationToken);
        if (gzip)
        {
            CheckGzipTrailer(guard.BytesUnpacked);
        }
    }

    public override ValueTask DisposeAsync() => source.DisposeAsync();

    private readonly record struct Step(SourceFile? File);

    /// <summary>The next entry: a file to stage, a skipped entry (no file), or null at the end of the archive.</summary>
    private async Task<Step?> NextAsync(TarReader tar, ArchiveLimits limits, SourceReading reading, CancellationToken cancellationToken)
    {
        TarEntry? entry;
        try
        {
            entry = await tar.GetNextEntryAsync(copyData: false, cancellationToken);
        }
        catch (Exception exception) when (IsUnreadable(exception))
        {
            throw Unreadable(exception, _lastEntry is null ? "its first entry" : $"the entry after '{_lastEntry}'");
        }
        if (entry is null)
        {
            return null;
        }
        limits.CountEntry();
        reading.Counters.AddFile();
        var name = entry.Name;
        _lastEntry = name;
        switch (entry.EntryType)
        {
            case TarEntryType.Directory or TarEntryType.DirectoryList:
                return new Step(null);
            case TarEntryType.SymbolicLink or TarEntryType.HardLink:
                reading.Report.Skip(name, SkipReason.Link,
                    $"a {(entry.EntryType == TarEntryType.SymbolicLink ? "symbolic" : "hard")} link to '{entry.LinkName}'; links are never followed");
                return new Step(null);
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                reading.Report.Skip(name, SkipReason.SpecialFile, $"a {Describe(entry.EntryType)}, not a regular file");
                return new Step(null);
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                break;
            default:
                reading.Report.Skip(name, SkipReason.SpecialFile, $"tar entry type {entry.EntryType} is not a regular file");
                return new Step(null);
        }

        limits.Declare(name, entry.Length);
        var relative = reading.Admit(name, entry.Length);
        if (relative is null)
        {
            return new Step(null);
        }
        var length = (int)entry.Length;
        if (length == 0 || entry.DataStream is null)
        {
            reading.Report.Skip(relative, SkipReason.NotAnImage, "the file is empty");
            return new Step(null);
        }
        byte[]? buffer;
        try
        {
            buffer = await SourceReading.ReadExactlyAsync(entry.DataStream, length, cancellationToken);
        }
        catch (Exception exception) when (IsUnreadable(exception))
        {
            throw Unreadable(exception, $"entry '{name}'");
        }
        if (buffer is null)
        {
            throw new StageInputException($"Source '{Uri}' is truncated: the {Kind} archive ends inside entry '{name}' ({length} bytes declared).");
        }
        return new Step(new SourceFile(relative, buffer, length));
    }

    /// <summary>Reads past the end-of-archive blocks so gzip checks its trailer (CRC and length) and the ratio cap sees every byte.</summary>
    private async Task DrainAsync(Stream guard, CancellationToken cancellationToken)
    {
        var scratch = new byte[64 * 1024];
        try
        {
            while (await guard.ReadAsync(scratch, cancellationToken) > 0)
            {
            }
        }
        catch (Exception exception) when (IsUnreadable(exception))
        {
            throw Unreadable(exception, "the end of the archive");
        }
    }

    /// <summary>
    /// The gzip trailer ends with the unpacked length (mod 2^32). .NET's inflater checks the trailer's CRC when
    /// the trailer is there, but ends quietly when the stream stops right after the last deflate block; a
    /// mismatch here is that cut. A gzip of several concatenated members would also fail this check.
    /// </summary>
    private void CheckGzipTrailer(long unpackedBytes)
    {
        var tail = packed.Tail;
        if (tail.Length < 8 || BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]) != (uint)unpackedBytes)
        {
            throw new StageInputException(
                $"Source '{Uri}' is truncated: the gzip stream ends without the trailer that closes it ({packed.BytesRead} bytes read, {unpackedBytes} unpacked).");
        }
    }

    private static bool IsUnreadable(Exception exception) =>
        exception is InvalidDataException or FormatException or EndOfStreamException or OverflowException or ArgumentException;

    private StageInputException Unreadable(Exception exception, string where) => exception switch
    {
        EndOfStreamException => new StageInputException($"Source '{Uri}' is truncated: the {Kind} archive ends in {where}.", exception),
        // The inflater's own words ("unsupported compression method") mislead for what is corrupt data.
        InvalidDataException when gzip && exception.Source == typeof(GZipStream).Assembly.GetName().Name =>
            new StageInputException($"Source '{Uri}' is not valid gzip data: the compressed stream is corrupt (found while reading {where}; the inflater reports: {exception.Message})", exception),
        _ => new StageInputException($"Source '{Uri}' is not a readable {Kind} archive: reading {where} failed ({exception.Message}); the archive is corrupt.", exception),
    };

    private static string Describe(TarEntryType type) => type switch
    {
        TarEntryType.CharacterDevice => "character device",
        TarEntryType.BlockDevice => "block device",
        TarEntryType.Fifo => "named pipe (FIFO)",
        _ => type.ToString(),
    };
}
