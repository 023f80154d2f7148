using System.Buffers;
using System.Globalization;
using System.IO.Enumeration;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using NvDinoPipeline.Storage.IO;

namespace NvDinoPipeline.Storage.FileSystem;

/// <summary>
/// Artifacts as plain files. A write goes to a hidden temporary file in the destination folder and is renamed
/// into place, so readers never see a partial file. The SHA-256 is kept in a hidden sidecar
/// (<c>.&lt;name&gt;.sha256</c>) together with the size and write time it describes: a sidecar left stale by a
/// crash or by another writer no longer matches the file and is ignored. Listings leave out symbolic links that lead
/// out of the locations <paramref name="access"/> lets be read.
/// </summary>
internal sealed class FileArtifactStore(ArtifactAccessPolicy access) : IArtifactBackend
{
    private const int CopyBufferSize = 1024 * 1024;

    public async Task<ArtifactInfo> PutAsync(Uri destination, Stream content, CancellationToken ct)
    {
        var path = ArtifactLocations.ToLocalPath(destination, nameof(destination));
        var folder = Path.GetDirectoryName(path)!;
        var name = Path.GetFileName(path);
        Directory.CreateDirectory(folder);
        if (Directory.Exists(path))
        {
            throw new ArgumentException($"'{destination}' is an existing folder; an object cannot replace it.", nameof(destination));
        }

        var partialPath = Path.Combine(folder, ArtifactLocations.PartialName(name));
        var partialSidecarPath = Path.Combine(folder, ArtifactLocations.PartialName(ArtifactLocations.Sha256SidecarName(name)));
        try
        {
            long size = 0;
            string sha256;
            var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
            try
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                await using (var output = new FileStream(partialPath, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.Write,
                    Share = FileShare.None,
                    Options = FileOptions.Asynchronous,
                    BufferSize = 0,
                }))
                {
                    int read;
                    while ((read = await content.ReadAsync(buffer.AsMemory(0, CopyBufferSize), ct)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        await output.WriteAsync(buffer.AsMemory(0, read), ct);
                        size += read;
                    }

                    output.Flush(flushToDisk: true);
                }

                sha256 = StreamReading.ToHex(hash.GetHashAndReset());
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            var lastWrite = File.GetLastWriteTimeUtc(partialPath);
            await WriteDurablyAsync(partialSidecarPath, FormatSidecar(sha256, size, lastWrite), ct);

            // Sidecar first: if the process dies between the two renames the sidecar describes a file that is
            // not there yet, and its size/time stamp make readers ignore it.
            File.Move(partialSidecarPath, Path.Combine(folder, ArtifactLocations.Sha256SidecarName(name)), overwrite: true);
            File.Move(partialPath, path, overwrite: true);
            return new ArtifactInfo(destination, size, sha256, null, new DateTimeOffset(lastWrite, TimeSpan.Zero));
        }
        catch
        {
            TryDelete(partialPath);
            TryDelete(partialSidecarPath);
            throw;
        }
    }

    public Task<Stream> OpenReadAsync(Uri source, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var path = ArtifactLocations.ToLocalPath(source, nameof(source));
        try
        {
            Stream stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read | FileShare.Delete,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            });
            return Task.FromResult(stream);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException || (e is UnauthorizedAccessException && Directory.Exists(path)))
        {
            throw new ArtifactNotFoundException(source, e);
        }
    }

    public async Task<ArtifactInfo?> GetInfoAsync(Uri uri, CancellationToken ct)
    {
        var path = ArtifactLocations.ToLocalPath(uri, nameof(uri));
        var file = new FileInfo(path);
        if (!file.Exists)
        {
            return null;
        }

        var sha256 = await ReadSidecarAsync(file, ct);
        return new ArtifactInfo(uri, file.Length, sha256, null, new DateTimeOffset(file.LastWriteTimeUtc, TimeSpan.Zero));
    }

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(Uri prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        var prefixPath = ArtifactLocations.ToLocalPath(prefix, nameof(prefix));

        // Like S3, a prefix is a string prefix: "…/run" matches "…/run1/x" and "…/run.txt".
        var folder = prefixPath.EndsWith('/') ? prefixPath : Path.GetDirectoryName(prefixPath);
        if (folder is null || !Directory.Exists(folder))
        {
            yield break;
        }

        await Task.CompletedTask;

        // Enumeration would descend into linked folders, wherever they lead; listings never do.
        var files = new FileSystemEnumerable<FileInfo>(folder, (ref FileSystemEntry entry) => (FileInfo)entry.ToFileSystemInfo(), new EnumerationOptions
        {
            RecurseSubdirectories = true,
            IgnoreInaccessible = true,
            AttributesToSkip = 0,
            ReturnSpecialDirectories = false,
        })
        {
            ShouldIncludePredicate = (ref FileSystemEntry entry) => !entry.IsDirectory,
            ShouldRecursePredicate = (ref FileSystemEntry entry) => (entry.Attributes & FileAttributes.ReparsePoint) == 0,
        };
        foreach (var file in files.OrderBy(f => f.FullName, StringComparer.Ordinal))
        {
            ct.ThrowIfCancellationRequested();
            if (!file.FullName.StartsWith(prefixPath, StringComparison.Ordinal)
                || ArtifactLocations.IsReservedName(file.Name)
                || IsInReservedFolder(file.FullName, folder))
            {
                continue;
            }

            var uri = ArtifactLocations.FromLocalPath(file.FullName);
            if (file.LinkTarget is not null && !access.IsReadable(uri))
            {
                continue;
            }

            yield return new ArtifactInfo(
                uri, file.Length, null, null,
                new DateTimeOffset(file.LastWriteTimeUtc, TimeSpan.Zero));
        }
    }

    public Task DeleteAsync(Uri uri, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var path = ArtifactLocations.ToLocalPath(uri, nameof(uri));
        if (Directory.Exists(path))
        {
            throw new ArgumentException($"'{uri}' is a folder; DeleteAsync deletes single objects.", nameof(uri));
        }

        File.Delete(path);
        File.Delete(SidecarPath(path));
        return Task.CompletedTask;
    }

    public Task<string> GetLocalPathAsync(Uri uri, string scratchDirectory, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var path = ArtifactLocations.ToLocalPath(uri, nameof(uri));
        if (!File.Exists(path))
        {
            throw new ArtifactNotFoundException(uri);
        }

        return Task.FromResult(path);
    }

    private static string SidecarPath(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, ArtifactLocations.Sha256SidecarName(Path.GetFileName(path)));

    private static bool IsInReservedFolder(string fullName, string root)
    {
        var relative = fullName[root.Length..].TrimStart('/');
        var segments = relative.Split('/');
        return segments[..^1].Any(ArtifactLocations.IsReservedName);
    }

    private static string FormatSidecar(string sha256, long size, DateTime lastWriteUtc) =>
        string.Create(CultureInfo.InvariantCulture, $"{sha256} {size} {lastWriteUtc.Ticks}\n");

    private static async Task<string?> ReadSidecarAsync(FileInfo file, CancellationToken ct)
    {
        string text;
        try
        {
            text = await File.ReadAllTextAsync(SidecarPath(file.FullName), ct);
        }
        catch (FileNotFoundException)
        {
            return null;
        }

        var fields = text.Trim().Split(' ');
        if (fields.Length != 3
            || fields[0].Length != 64
            || !long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
            || !long.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks))
        {
            return null;
        }

        return size == file.Length && ticks == file.LastWriteTimeUtc.Ticks ? fields[0] : null;
    }

    private static async Task WriteDurablyAsync(string path, string text, CancellationToken ct)
    {
        await using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(text), ct);
        stream.Flush(flushToDisk: true);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
