using System.Buffers;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Staging.Output;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Staging.Sources;

/// <summary>
/// A zip archive, read through its central directory. A zip's directory sits at its end, so an archive on
/// S3 is downloaded once into scratch first (a local one is read in place); entries are then inflated one
/// at a time into memory.
/// </summary>
internal sealed class ZipArchiveSource(Uri uri, string fingerprint, long size, IArtifactStore store) : DatasetSource(uri)
{
    // Unix file types in the high half of a zip entry's external attributes (st_mode >> 12).
    private const int UnixTypeMask = 0xF000;
    private const int UnixFifo = 0x1000;
    private const int UnixCharacterDevice = 0x2000;
    private const int UnixDirectory = 0x4000;
    private const int UnixBlockDevice = 0x6000;
    private const int UnixSymbolicLink = 0xA000;
    private const int UnixSocket = 0xC000;

    public override string Kind => "zip";

    public override string Fingerprint => fingerprint;

    public override long? TotalBytes => size;

    public override async IAsyncEnumerable<SourceFile> ReadAsync(SourceReading reading, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var path = await store.GetLocalPathAsync(Uri, reading.ScratchDirectory, cancellationToken);
        var limits = new ArchiveLimits(reading.Options, Uri);
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        ZipArchive archive;
        try
        {
            archive = await ZipArchive.CreateAsync(file, ZipArchiveMode.Read, leaveOpen: true, entryNameEncoding: null, cancellationToken);
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException($"Source '{Uri}' is not a readable zip archive: {exception.Message}", exception);
        }
        await using (archive)
        {
            var state = new ZipState(limits, file.Length);
            foreach (var entry in archive.Entries)
            {
                if (await NextAsync(entry, state, reading, cancellationToken) is { } sourceFile)
                {
                    yield return sourceFile;
                }
            }
        }
    }

    private sealed class ZipState(ArchiveLimits limits, long archiveBytes)
    {
        public ArchiveLimits Limits => limits;

        public long ArchiveBytes => archiveBytes;

        public long Unpacked { get; set; }
    }

    private async Task<SourceFile?> NextAsync(ZipArchiveEntry entry, ZipState state, SourceReading reading, CancellationToken cancellationToken)
    {
        state.Limits.CountEntry();
        reading.Counters.AddFile();
        reading.Counters.AddSourceBytes(entry.CompressedLength);
        var name = entry.FullName;
        var unixType = (entry.ExternalAttributes >> 16) & UnixTypeMask;
        if (unixType == UnixDirectory || (name.EndsWith('/') && entry.Length == 0))
        {
            return null;
        }
        switch (unixType)
        {
            case UnixSymbolicLink:
                reading.Report.Skip(name, SkipReason.Link, "a symbolic link; links are never followed");
                return null;
            case UnixFifo or UnixCharacterDevice or UnixBlockDevice or UnixSocket:
                reading.Report.Skip(name, SkipReason.SpecialFile, "a device, pipe or socket, not a regular file");
                return null;
        }
        if (entry.IsEncrypted)
        {
            reading.Report.Skip(name, SkipReason.UnsupportedFormat, "the entry is encrypted");
            return null;
        }

        state.Limits.Declare(name, entry.Length);
        var relative = reading.Admit(name, entry.Length);
        if (relative is null)
        {
            return null;
        }
        var length = (int)entry.Length;
        if (length == 0)
        {
            reading.Report.Skip(relative, SkipReason.NotAnImage, "the file is empty");
            return null;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(length + 1);
        try
        {
            int read;
            try
            {
                await using var data = await entry.OpenAsync(cancellationToken);
                // One byte more than declared shows an entry whose data unpacks past its declared size.
                read = await data.ReadAtLeastAsync(buffer.AsMemory(0, length + 1), length + 1, throwOnEndOfStream: false, cancellationToken);
            }
            catch (InvalidDataException exception)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                reading.Report.Skip(relative, SkipReason.Corrupt, $"the zip entry cannot be unpacked: {exception.Message}");
                return null;
            }
            state.Unpacked += read;
            state.Limits.CheckUnpacked(state.Unpacked, state.ArchiveBytes, compressed: true);
            if (read != length)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                reading.Report.Skip(relative, SkipReason.Corrupt,
                    read > length ? $"the zip entry unpacks to more than its declared {length} bytes" : $"the zip entry unpacks to {read} of its declared {length} bytes");
                return null;
            }
            return new SourceFile(relative, buffer, length);
        }
        catch (Exception exception) when (exception is not InvalidDataException)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}
