using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Staging.Output;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Staging.Sources;

/// <summary>
/// A local folder of images, nested folders included. It is listed once up front (the listing is the cache
/// fingerprint); links are reported and never followed, so a link to /etc or to another disk stages nothing.
/// </summary>
internal sealed class LocalFolderSource : DatasetSource
{
    private readonly string _root;
    private readonly IReadOnlyList<ListedFile> _files;

    private LocalFolderSource(Uri uri, string root, IReadOnlyList<ListedFile> files, string fingerprint) : base(uri)
    {
        _root = root;
        _files = files;
        Fingerprint = fingerprint;
        TotalBytes = files.Sum(f => f.Size);
    }

    public override string Kind => "folder";

    public override string Fingerprint { get; }

    public override long? TotalBytes { get; }

    public int FileCount => _files.Count;

    private enum ListedKind
    {
        File,
        Link,
    }

    private sealed record ListedFile(string RelativePath, ListedKind Kind, long Size, long ModifiedTicks, string? LinkTarget);

    public static LocalFolderSource List(Uri uri, string root, StagingOptions options, CancellationToken cancellationToken)
    {
        var files = new List<ListedFile>();
        var folders = new Stack<(string Path, string Prefix)>();
        folders.Push((root, ""));
        var entries = 0;
        while (folders.TryPop(out var folder))
        {
            cancellationToken.ThrowIfCancellationRequested();
            FileSystemInfo[] infos;
            try
            {
                infos = new DirectoryInfo(folder.Path).GetFileSystemInfos();
            }
            catch (Exception exception) when (exception is UnauthorizedAccessException or IOException)
            {
                throw new StageInputException($"Source '{uri}' cannot be listed: folder '{folder.Prefix}' is unreadable ({exception.Message}).", exception);
            }
            foreach (var info in infos)
            {
                if (++entries > options.MaxEntries)
                {
                    throw new StageInputException(
                        $"Source '{uri}' has more than {options.MaxEntries} entries ({StagingOptions.SectionName}:{nameof(StagingOptions.MaxEntries)}); refusing to stage it.");
                }
                var relative = folder.Prefix + info.Name;
                if (info.LinkTarget is not null)
                {
                    files.Add(new ListedFile(relative, ListedKind.Link, 0, 0, info.LinkTarget));
                }
                else if (info is DirectoryInfo directory)
                {
                    folders.Push((directory.FullName, relative + "/"));
                }
                else if (info is FileInfo file)
                {
                    files.Add(new ListedFile(relative, ListedKind.File, file.Length, file.LastWriteTimeUtc.Ticks, null));
                }
            }
        }
        files.Sort((a, b) => string.CompareOrdinal(a.RelativePath, b.RelativePath));

        var listing = new StringBuilder().Append("folder\n").Append(root).Append('\n');
        foreach (var file in files)
        {
            listing.Append(CultureInfo.InvariantCulture, $"{file.RelativePath}\t{file.Kind}\t{file.Size}\t{file.ModifiedTicks}\t{file.LinkTarget}\n");
        }
        var fingerprint = "listing:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(listing.ToString())));
        return new LocalFolderSource(uri, root, files, fingerprint);
    }

    public override async IAsyncEnumerable<SourceFile> ReadAsync(SourceReading reading, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        reading.Counters.FilesTotal = _files.Count;
        foreach (var file in _files)
        {
            reading.Counters.AddFile();
            if (file.Kind == ListedKind.Link)
            {
                reading.Report.Skip(file.RelativePath, SkipReason.Link, $"a symbolic link to '{file.LinkTarget}'; links are never followed");
                continue;
            }
            var relative = reading.Admit(file.RelativePath, file.Size);
            if (relative is null)
            {
                continue;
            }
            // Pipes and devices list with size 0: refusing empty files before opening keeps a FIFO from blocking the read.
            if (file.Size == 0)
            {
                reading.Report.Skip(relative, SkipReason.NotAnImage, "the file is empty or not a regular file");
                continue;
            }
            if (await ReadFileAsync(Path.Combine(_root, file.RelativePath), relative, reading, cancellationToken) is { } sourceFile)
            {
                yield return sourceFile;
            }
        }
    }

    private async Task<SourceFile?> ReadFileAsync(string path, string relative, SourceReading reading, CancellationToken cancellationToken)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read | FileShare.Delete,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
                BufferSize = 0,
            });
        }
        catch (Exception exception) when (exception is UnauthorizedAccessException or IOException)
        {
            throw new StageInputException($"Source '{Uri}' has a file that cannot be read: '{relative}' ({exception.Message}).", exception);
        }
        await using var _ = stream;
        var length = stream.Length;
        if (length > reading.Options.MaxFileBytes || length == 0)
        {
            reading.Report.Skip(relative, length == 0 ? SkipReason.NotAnImage : SkipReason.TooLarge, $"the file changed to {length} bytes while staging");
            return null;
        }
        var buffer = await SourceReading.ReadExactlyAsync(stream, (int)length, cancellationToken);
        if (buffer is null)
        {
            reading.Report.Skip(relative, SkipReason.Truncated, "the file shrank while it was read");
            return null;
        }
        reading.Counters.AddSourceBytes(length);
        return new SourceFile(relative, buffer, (int)length);
    }
}

/// <summary>Every object under an S3 prefix (or any store prefix), fetched several at a time and handed on in key order.</summary>
internal sealed class StorePrefixSource : DatasetSource
{
    private readonly IArtifactStore _store;
    private readonly IReadOnlyList<ArtifactInfo> _objects;
    private readonly Uri _prefix;

    private StorePrefixSource(Uri prefix, IArtifactStore store, IReadOnlyList<ArtifactInfo> objects, string fingerprint) : base(prefix)
    {
        _prefix = prefix;
        _store = store;
        _objects = objects;
        Fingerprint = fingerprint;
        TotalBytes = objects.Sum(o => o.Size);
    }

    public override string Kind => "prefix";

    public override string Fingerprint { get; }

    public override long? TotalBytes { get; }

    public int ObjectCount => _objects.Count;

    /// <summary>Lists the prefix; null when nothing is stored under it.</summary>
    public static async Task<StorePrefixSource?> ListAsync(Uri prefix, IArtifactStore store, StagingOptions options, CancellationToken cancellationToken)
    {
        var objects = new List<ArtifactInfo>();
        await foreach (var info in store.ListAsync(prefix, cancellationToken))
        {
            if (objects.Count >= options.MaxEntries)
            {
                throw new StageInputException(
                    $"Source '{prefix}' has more than {options.MaxEntries} objects ({StagingOptions.SectionName}:{nameof(StagingOptions.MaxEntries)}); refusing to stage it.");
            }
            objects.Add(info);
        }
        if (objects.Count == 0)
        {
            return null;
        }
        objects.Sort((a, b) => string.CompareOrdinal(a.Uri.AbsoluteUri, b.Uri.AbsoluteUri));
        var listing = new StringBuilder().Append("prefix\n").Append(prefix.AbsoluteUri).Append('\n');
        foreach (var info in objects)
        {
            listing.Append(CultureInfo.InvariantCulture, $"{info.Uri.AbsoluteUri}\t{info.Size}\t{info.ETag ?? info.LastModified.UtcTicks.ToString(CultureInfo.InvariantCulture)}\n");
        }
        var fingerprint = "listing:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(listing.ToString())));
        return new StorePrefixSource(prefix, store, objects, fingerprint);
    }

    public override async IAsyncEnumerable<SourceFile> ReadAsync(SourceReading reading, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        reading.Counters.FilesTotal = _objects.Count;
        var inFlight = new Queue<Task<SourceFile?>>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            foreach (var info in _objects)
            {
                var key = RelativeKey(info.Uri);
                var relative = reading.Admit(key, info.Size);
                if (relative is null)
                {
                    reading.Counters.AddFile();
                    continue;
                }
                if (info.Size == 0)
                {
                    reading.Counters.AddFile();
                    reading.Report.Skip(relative, SkipReason.NotAnImage, "the object is empty");
                    continue;
                }
                inFlight.Enqueue(FetchAsync(info, relative, reading, stop.Token));
                if (inFlight.Count >= reading.Options.DownloadParallelism && await inFlight.Dequeue() is { } ready)
                {
                    yield return ready;
                }
            }
            while (inFlight.Count > 0)
            {
                if (await inFlight.Dequeue() is { } ready)
                {
                    yield return ready;
                }
            }
        }
        finally
        {
            // Abandoned fetches (the consumer stopped early) give their buffers back once they end.
            await stop.CancelAsync();
            foreach (var pending in inFlight)
            {
                try
                {
                    if (await pending is { } orphan)
                    {
                        ArrayPool<byte>.Shared.Return(orphan.Buffer);
                    }
                }
                catch (Exception)
                {
                    // Already failing or cancelled; the first failure is the one reported.
                }
            }
        }
    }

    /// <summary>The object's key below the prefix, compared unescaped: a user's URI and the store's may escape differently.</summary>
    private string RelativeKey(Uri objectUri)
    {
        var prefix = Uri.UnescapeDataString(_prefix.AbsolutePath);
        var path = Uri.UnescapeDataString(objectUri.AbsolutePath);
        return path.StartsWith(prefix, StringComparison.Ordinal) ? path[prefix.Length..] : path;
    }

    private async Task<SourceFile?> FetchAsync(ArtifactInfo info, string relative, SourceReading reading, CancellationToken cancellationToken)
    {
        await using var stream = await _store.OpenReadAsync(info.Uri, cancellationToken);
        var length = (int)info.Size;
        var buffer = await SourceReading.ReadExactlyAsync(stream, length, cancellationToken);
        reading.Counters.AddFile();
        if (buffer is null)
        {
            reading.Report.Skip(relative, SkipReason.Truncated, $"the object ended before its listed {length} bytes");
            return null;
        }
        reading.Counters.AddSourceBytes(length);
        return new SourceFile(relative, buffer, length);
    }
}
