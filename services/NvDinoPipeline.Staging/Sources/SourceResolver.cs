using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Staging.Sources;

/// <summary>
/// Finds out what a source URI names: a local folder, an S3 prefix, or an archive recognised by its first
/// bytes (not by its extension: a .tgz called .zip still stages).
/// </summary>
internal static class SourceResolver
{
    private const int SniffBytes = 512;

    public static async Task<DatasetSource> ResolveAsync(Uri uri, IArtifactStore store, StagingOptions options, CancellationToken cancellationToken)
    {
        try
        {
            // Before anything looks at the source: a folder is listed with the file system, not through the store.
            store.Access.EnsureReadable(uri);
        }
        catch (ArtifactAccessDeniedException exception)
        {
            throw new StageInputException($"Source {exception.Message}.", exception);
        }
        if (!uri.IsAbsoluteUri || uri.Scheme is not ("file" or "s3"))
        {
            throw new StageInputException($"Source '{uri}' is not supported: give a file:// path or an s3:// object or prefix.");
        }
        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            throw new StageInputException($"Source '{uri}' has a query or fragment; escape '?' and '#' in names as %3F and %23.");
        }

        if (uri.Scheme == "file")
        {
            var path = uri.LocalPath;
            if (!Path.IsPathFullyQualified(path) || (!string.IsNullOrEmpty(uri.Host) && uri.Host != "localhost"))
            {
                throw new StageInputException($"Source '{uri}' is not an absolute local path (file:///data/images/).");
            }
            if (Directory.Exists(path))
            {
                return LocalFolderSource.List(uri, Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)), options, cancellationToken);
            }
            if (!File.Exists(path))
            {
                throw new StageInputException($"Source '{uri}' does not exist.");
            }
            var fileInfo = await store.GetInfoAsync(uri, cancellationToken) ?? throw new StageInputException($"Source '{uri}' does not exist.");
            return await OpenArchiveAsync(uri, fileInfo, store, cancellationToken);
        }

        if (!uri.AbsolutePath.EndsWith('/'))
        {
            if (await store.GetInfoAsync(uri, cancellationToken) is { } info)
            {
                return await OpenArchiveAsync(uri, info, store, cancellationToken);
            }
            uri = new Uri(uri.AbsoluteUri + "/");
        }
        return await StorePrefixSource.ListAsync(uri, store, options, cancellationToken)
            ?? throw new StageInputException($"Source '{uri}' does not exist: no object has that key and nothing is stored under it as a prefix.");
    }

    private static async Task<DatasetSource> OpenArchiveAsync(Uri uri, ArtifactInfo info, IArtifactStore store, CancellationToken cancellationToken)
    {
        // The store's own SHA-256 or the ETag identify the content wherever it is; a file written by another
        // tool has neither, and its path, size and modification time stand in for it.
        var fingerprint = info.Sha256 is { } sha256 ? $"sha256:{sha256}"
            : info.ETag is { } etag ? $"etag:{etag}:{info.Size}"
            : $"file:{uri.AbsoluteUri}:{info.Size}:{info.LastModified.UtcTicks}";

        var stream = new CountingReadStream(await store.OpenReadAsync(uri, cancellationToken));
        try
        {
            var head = new byte[SniffBytes];
            var headLength = await stream.ReadAtLeastAsync(head, SniffBytes, throwOnEndOfStream: false, cancellationToken);
            var kind = Recognise(head.AsSpan(0, headLength), uri);
            if (kind == ArchiveKind.Zip)
            {
                await stream.DisposeAsync();
                return new ZipArchiveSource(uri, fingerprint, info.Size, store);
            }
            return new TarArchiveSource(uri, fingerprint, info.Size, stream, new PrefixedReadStream(head, headLength, stream), kind == ArchiveKind.TarGz);
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
    }

    internal enum ArchiveKind
    {
        TarGz,
        Tar,
        Zip,
    }

    internal static ArchiveKind Recognise(ReadOnlySpan<byte> head, Uri uri)
    {
        if (head.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x8B]))
        {
            return ArchiveKind.TarGz;
        }
        if (head.StartsWith("PK\x03\x04"u8) || head.StartsWith("PK\x05\x06"u8) || head.StartsWith("PK\x07\x08"u8))
        {
            return ArchiveKind.Zip;
        }
        if (head.Length >= 262 && head[257..262].SequenceEqual("ustar"u8))
        {
            return ArchiveKind.Tar;
        }
        if (uri.AbsolutePath.EndsWith(".tar", StringComparison.OrdinalIgnoreCase) && head.Length >= 512)
        {
            return ArchiveKind.Tar;
        }
        var known = head switch
        {
            _ when head.StartsWith("BZh"u8) => "bzip2-compressed",
            _ when head.StartsWith((ReadOnlySpan<byte>)[0xFD, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0x00]) => "xz-compressed",
            _ when head.StartsWith((ReadOnlySpan<byte>)[0x28, 0xB5, 0x2F, 0xFD]) => "zstd-compressed",
            _ when head.StartsWith((ReadOnlySpan<byte>)[(byte)'7', (byte)'z', 0xBC, 0xAF, 0x27, 0x1C]) => "a 7-Zip archive",
            _ when head.StartsWith("Rar!"u8) => "a RAR archive",
            _ when head.Length == 0 => "empty",
            _ => null,
        };
        throw new StageInputException(known is null
            ? $"Source '{uri}' is not a .tar.gz, .tar or .zip archive (its first bytes match none of them); give an archive, a folder or an S3 prefix of images."
            : $"Source '{uri}' is {known}; staging reads .tar.gz, .tar and .zip archives, folders and S3 prefixes.");
    }
}
