using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Storage.IO;

namespace NvDinoPipeline.Storage.S3;

/// <summary>
/// Artifacts as S3 objects. Uploads stream through bounded buffers: objects up to the multipart threshold go
/// in one request, larger ones as a multipart upload that becomes visible only when completed. The SHA-256
/// is stored as <c>x-amz-meta-sha256</c>. Every request carries Content-MD5 and every returned MD5 ETag is
/// compared with the bytes sent, so a server that stores something else is caught at upload time.
/// </summary>
internal sealed class S3ArtifactStore(IAmazonS3 client, ArtifactStoreS3Options options, ILogger logger) : IArtifactBackend, IDisposable
{
    private const string Sha256MetadataKey = "sha256";
    private const string ContentType = "application/octet-stream";
    private const int MaxParts = 10_000;
    private const long MaxSingleCopyBytes = 5L * 1024 * 1024 * 1024;
    private const long CopyPartBytes = 1024L * 1024 * 1024;
    private const int HashBufferSize = 1024 * 1024;

    private string Endpoint => string.IsNullOrWhiteSpace(options.ServiceUrl) ? "AWS S3" : options.ServiceUrl;

    public async Task<ArtifactInfo> PutAsync(Uri destination, Stream content, CancellationToken ct)
    {
        var location = S3Location.Parse(destination, nameof(destination));
        string? knownSha256 = null;
        long? knownLength = null;
        if (content.CanSeek)
        {
            // A seekable source (a file) is hashed first so that the SHA-256 can be attached when the multipart
            // upload starts; otherwise large objects go through a hidden staging key and a server-side copy.
            knownLength = content.Length - content.Position;
            if (knownLength > options.MultipartThresholdBytes)
            {
                var start = content.Position;
                knownSha256 = await HashToEndAsync(content, ct);
                content.Position = start;
            }
        }

        return await TranslateAsync(destination, () => UploadAsync(location, destination, content, knownSha256, knownLength, ct), ct);
    }

    public async Task<Stream> OpenReadAsync(Uri source, CancellationToken ct)
    {
        var location = S3Location.Parse(source, nameof(source));
        var response = await TranslateAsync(
            source,
            () => client.GetObjectAsync(new GetObjectRequest { BucketName = location.Bucket, Key = location.Key }, ct),
            ct);
        return new VerifyingReadStream(response.ResponseStream, source, response.ContentLength, RecordedSha256(response.Metadata), response,
            exception => IsEntityTagMismatch(exception)
                ? new ArtifactIntegrityException(source, "MD5 of the content (its entity tag)", response.ETag, "other bytes")
                : null);
    }

    /// <summary>
    /// The SDK checks a plain object's MD5 against its entity tag as the last byte is read, and throws this when they
    /// differ: an object torn by a store that does not write atomically (s3rver overwrites in place).
    /// </summary>
    private static bool IsEntityTagMismatch(Exception exception) =>
        exception is AmazonClientException { InnerException: null } client
        && client.Message.Contains("Expected hash not equal to calculated hash", StringComparison.Ordinal);

    public async Task<ArtifactInfo?> GetInfoAsync(Uri uri, CancellationToken ct)
    {
        var location = S3Location.Parse(uri, nameof(uri));
        try
        {
            return await TranslateAsync(uri, () => HeadAsync(location, uri, ct), ct);
        }
        catch (ArtifactNotFoundException)
        {
            return null;
        }
    }

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(Uri prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        var location = S3Location.Parse(prefix, nameof(prefix));
        string? continuationToken = null;
        do
        {
            var request = new ListObjectsV2Request
            {
                BucketName = location.Bucket,
                Prefix = location.Key.Length == 0 ? null : location.Key,
                ContinuationToken = continuationToken,
            };
            var response = await TranslateAsync(prefix, () => client.ListObjectsV2Async(request, ct), ct);

            // S3Objects is null, not empty, when nothing matches.
            foreach (var item in response.S3Objects ?? [])
            {
                if (item.Key.EndsWith('/') || item.Key.Split('/').Any(ArtifactLocations.IsReservedName))
                {
                    continue;
                }

                yield return new ArtifactInfo(
                    location.WithKey(item.Key).ToUri(), item.Size ?? 0, null, TrimETag(item.ETag), ToOffset(item.LastModified));
            }

            continuationToken = response.IsTruncated == true ? response.NextContinuationToken : null;
        }
        while (continuationToken is not null);
    }

    public Task DeleteAsync(Uri uri, CancellationToken ct)
    {
        var location = S3Location.Parse(uri, nameof(uri));
        return TranslateAsync(
            uri,
            () => client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = location.Bucket, Key = location.Key }, ct),
            ct);
    }

    public async Task<string> GetLocalPathAsync(Uri uri, string scratchDirectory, CancellationToken ct)
    {
        var location = S3Location.Parse(uri, nameof(uri));
        ArgumentException.ThrowIfNullOrWhiteSpace(scratchDirectory);
        var scratchRoot = Path.GetFullPath(scratchDirectory);
        var localPath = Path.GetFullPath(Path.Combine(scratchRoot, "s3", location.Bucket, location.Key));
        if (!localPath.StartsWith(Path.Combine(scratchRoot, "s3", location.Bucket) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{uri}' has a key that would leave the scratch directory '{scratchRoot}'.", nameof(uri));
        }

        var info = await GetInfoAsync(uri, ct) ?? throw new ArtifactNotFoundException(uri);
        if (info.Sha256 is not null && await IsVerifiedCopyAsync(localPath, info, ct))
        {
            return localPath;
        }

        if (info.Sha256 is null)
        {
            logger.LogWarning("{Uri} has no recorded sha256; its download is checked by length only", uri);
        }

        var folder = Path.GetDirectoryName(localPath)!;
        Directory.CreateDirectory(folder);
        var partialPath = Path.Combine(folder, ArtifactLocations.PartialName(Path.GetFileName(localPath)));
        try
        {
            await using (var remote = await OpenReadAsync(uri, ct))
            await using (var local = new FileStream(partialPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous))
            {
                // The verifying stream throws on the final read if length or SHA-256 differ from the record.
                await remote.CopyToAsync(local, HashBufferSize, ct);
            }

            File.Move(partialPath, localPath, overwrite: true);
            return localPath;
        }
        catch
        {
            TryDelete(partialPath);
            throw;
        }
    }

    public void Dispose() => client.Dispose();

    private async Task<ArtifactInfo> UploadAsync(
        S3Location location, Uri uri, Stream content, string? knownSha256, long? knownLength, CancellationToken ct)
    {
        // Buffers of this size are allocated per upload rather than pooled: a pool would keep tens of MiB
        // per process alive between uploads.
        var threshold = (int)options.MultipartThresholdBytes;
        var head = GC.AllocateUninitializedArray<byte>(threshold + 1);
        var headLength = await StreamReading.ReadFullAsync(content, head, ct);
        if (headLength <= threshold)
        {
            return await PutSingleAsync(location, uri, head, headLength, ct);
        }

        var source = new PrefixedSource(head, headLength, content);
        return await PutMultipartAsync(location, uri, source, knownSha256, knownLength, ct);
    }

    private async Task<ArtifactInfo> PutSingleAsync(S3Location location, Uri uri, byte[] buffer, int length, CancellationToken ct)
    {
        var sha256 = StreamReading.ToHex(SHA256.HashData(buffer.AsSpan(0, length)));
        var md5 = MD5.HashData(buffer.AsSpan(0, length));
        var request = new PutObjectRequest
        {
            BucketName = location.Bucket,
            Key = location.Key,
            InputStream = new MemoryStream(buffer, 0, length, writable: false),
            MD5Digest = Convert.ToBase64String(md5),
            ContentType = ContentType,
            DisablePayloadSigning = options.DisablePayloadSigning ? true : null,
        };
        request.Metadata[Sha256MetadataKey] = sha256;
        var response = await client.PutObjectAsync(request, ct);
        await VerifyUploadedETagAsync(location, uri, response.ETag, StreamReading.ToHex(md5), null, ct);
        return await DescribeUploadAsync(location, uri, length, sha256, ct);
    }

    private async Task<ArtifactInfo> PutMultipartAsync(
        S3Location location, Uri uri, PrefixedSource source, string? knownSha256, long? knownLength, CancellationToken ct)
    {
        var partSize = PartSizeFor(uri, knownLength);
        var target = knownSha256 is null ? location.WithKey(StagingKey(location.Key)) : location;
        var initiate = new InitiateMultipartUploadRequest { BucketName = target.Bucket, Key = target.Key, ContentType = ContentType };
        if (knownSha256 is not null)
        {
            initiate.Metadata[Sha256MetadataKey] = knownSha256;
        }

        var uploadId = (await client.InitiateMultipartUploadAsync(initiate, ct)).UploadId;
        var completed = false;
        try
        {
            var (parts, size, sha256, md5Hex, multipartETag) = await UploadPartsAsync(target, uri, uploadId, source, partSize, ct);
            if (knownSha256 is not null && !string.Equals(knownSha256, sha256, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"The content for '{uri}' changed while it was uploaded (sha256 {knownSha256} before, {sha256} during the upload).");
            }

            var complete = await client.CompleteMultipartUploadAsync(
                new CompleteMultipartUploadRequest { BucketName = target.Bucket, Key = target.Key, UploadId = uploadId, PartETags = parts },
                CancellationToken.None);
            completed = true;
            await VerifyUploadedETagAsync(target, uri, complete.ETag, md5Hex, multipartETag, ct);

            if (target != location)
            {
                try
                {
                    await CopyIntoPlaceAsync(target, location, uri, size, sha256, md5Hex, multipartETag, ct);
                }
                finally
                {
                    await TryDeleteObjectAsync(target);
                }
            }

            logger.LogDebug("Uploaded {Uri} as {PartCount} parts, {Size} bytes, sha256 {Sha256}", uri, parts.Count, size, sha256);
            return await DescribeUploadAsync(location, uri, size, sha256, ct);
        }
        catch when (!completed)
        {
            await TryAbortAsync(target, uploadId, uri);
            throw;
        }
    }

    private async Task<(List<PartETag> Parts, long Size, string Sha256, string Md5Hex, string MultipartETag)> UploadPartsAsync(
        S3Location target, Uri uri, string uploadId, PrefixedSource source, int partSize, CancellationToken ct)
    {
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        using var partMd5s = new MemoryStream();
        var parts = new List<PartETag>();
        long size = 0;
        byte[][] buffers = [GC.AllocateUninitializedArray<byte>(partSize), GC.AllocateUninitializedArray<byte>(partSize)];
        Task<PartETag>? inFlight = null;
        try
        {
            // Reading the next part overlaps with sending the previous one; two buffers bound the memory.
            for (var index = 0; ; index++)
            {
                var buffer = buffers[index % 2];
                var length = await source.FillAsync(buffer.AsMemory(0, partSize), ct);
                if (length == 0 && parts.Count + (inFlight is null ? 0 : 1) > 0)
                {
                    break;
                }

                var data = buffer.AsSpan(0, length);
                sha256.AppendData(data);
                md5.AppendData(data);
                var partMd5 = MD5.HashData(data);
                partMd5s.Write(partMd5);
                size += length;

                var partNumber = index + 1;
                if (partNumber > MaxParts)
                {
                    throw new ArgumentException(
                        $"'{uri}' is larger than {MaxParts} parts of {partSize} bytes; raise {ArtifactStoreOptions.SectionName}:S3:PartSizeBytes.");
                }

                if (inFlight is not null)
                {
                    parts.Add(await inFlight);
                    inFlight = null;
                }

                inFlight = UploadPartAsync(target, uri, uploadId, partNumber, buffer, length, partMd5, ct);
                if (length < partSize)
                {
                    break;
                }
            }

            if (inFlight is not null)
            {
                parts.Add(await inFlight);
                inFlight = null;
            }
        }
        finally
        {
            if (inFlight is not null)
            {
                // Never leave a part request running behind a failed upload; its own failure is secondary to
                // the one being thrown.
                try
                {
                    await inFlight;
                }
                catch (Exception e) when (e is AmazonServiceException or HttpRequestException or OperationCanceledException or IOException)
                {
                }
            }
        }

        var multipartETag = $"{StreamReading.ToHex(MD5.HashData(partMd5s.ToArray()))}-{parts.Count}";
        return (parts, size, StreamReading.ToHex(sha256.GetHashAndReset()), StreamReading.ToHex(md5.GetHashAndReset()), multipartETag);
    }

    private async Task<PartETag> UploadPartAsync(
        S3Location target, Uri uri, string uploadId, int partNumber, byte[] buffer, int length, byte[] md5, CancellationToken ct)
    {
        var response = await client.UploadPartAsync(
            new UploadPartRequest
            {
                BucketName = target.Bucket,
                Key = target.Key,
                UploadId = uploadId,
                PartNumber = partNumber,
                PartSize = length,
                InputStream = new MemoryStream(buffer, 0, length, writable: false),
                MD5Digest = Convert.ToBase64String(md5),
                DisablePayloadSigning = options.DisablePayloadSigning ? true : null,
            },
            ct);
        var etag = TrimETag(response.ETag);
        var expected = StreamReading.ToHex(md5);
        if (options.VerifyETag && IsMd5Hex(etag) && etag != expected)
        {
            throw new ArtifactIntegrityException(uri, $"ETag of part {partNumber} (MD5 of the bytes sent)", expected, etag!);
        }

        return new PartETag(partNumber, response.ETag);
    }

    private async Task CopyIntoPlaceAsync(
        S3Location staging, S3Location location, Uri uri, long size, string sha256, string md5Hex, string multipartETag, CancellationToken ct)
    {
        if (size <= MaxSingleCopyBytes)
        {
            var copy = new CopyObjectRequest
            {
                SourceBucket = staging.Bucket,
                SourceKey = staging.Key,
                DestinationBucket = location.Bucket,
                DestinationKey = location.Key,
                MetadataDirective = S3MetadataDirective.REPLACE,
                ContentType = ContentType,
            };
            copy.Metadata[Sha256MetadataKey] = sha256;
            var response = await client.CopyObjectAsync(copy, ct);
            await VerifyUploadedETagAsync(location, uri, response.ETag, md5Hex, multipartETag, ct);
            return;
        }

        // CopyObject stops at 5 GiB; larger objects are copied part by part on the server.
        var initiate = new InitiateMultipartUploadRequest { BucketName = location.Bucket, Key = location.Key, ContentType = ContentType };
        initiate.Metadata[Sha256MetadataKey] = sha256;
        var uploadId = (await client.InitiateMultipartUploadAsync(initiate, ct)).UploadId;
        try
        {
            var parts = new List<PartETag>();
            for (long first = 0, number = 1; first < size; first += CopyPartBytes, number++)
            {
                var part = await client.CopyPartAsync(
                    new CopyPartRequest
                    {
                        SourceBucket = staging.Bucket,
                        SourceKey = staging.Key,
                        DestinationBucket = location.Bucket,
                        DestinationKey = location.Key,
                        UploadId = uploadId,
                        PartNumber = (int)number,
                        FirstByte = first,
                        LastByte = Math.Min(first + CopyPartBytes, size) - 1,
                    },
                    ct);
                parts.Add(new PartETag((int)number, part.ETag));
            }

            await client.CompleteMultipartUploadAsync(
                new CompleteMultipartUploadRequest { BucketName = location.Bucket, Key = location.Key, UploadId = uploadId, PartETags = parts },
                CancellationToken.None);
        }
        catch
        {
            await TryAbortAsync(location, uploadId, uri);
            throw;
        }
    }

    /// <summary>Compares an upload's ETag with the MD5 of what was sent. A single-part ETag is the object's MD5; a
    /// multipart ETag is the MD5 of the parts' MD5s with "-count" (some servers, s3rver among them, return the
    /// whole-object MD5 instead). Other forms (SSE-KMS) cannot be checked. A mismatching object is removed.</summary>
    private async Task VerifyUploadedETagAsync(S3Location location, Uri uri, string? rawETag, string md5Hex, string? multipartETag, CancellationToken ct)
    {
        if (!options.VerifyETag)
        {
            return;
        }

        var etag = TrimETag(rawETag);
        var mismatch = (IsMd5Hex(etag) && etag != md5Hex)
            || (multipartETag is not null && etag is not null && etag.Contains('-') && etag != multipartETag);
        if (!mismatch)
        {
            return;
        }

        await TryDeleteObjectAsync(location);
        throw new ArtifactIntegrityException(
            uri, $"ETag returned by {Endpoint} (MD5 of the bytes sent)", multipartETag is null ? md5Hex : $"{md5Hex} or {multipartETag}", etag!);
    }

    private async Task<ArtifactInfo> DescribeUploadAsync(S3Location location, Uri uri, long size, string sha256, CancellationToken ct)
    {
        var info = await HeadAsync(location, uri, ct);
        if (info.Size != size)
        {
            throw new ArtifactIntegrityException(uri, $"stored size at {Endpoint}", size.ToString(), info.Size.ToString());
        }

        if (info.Sha256 is null)
        {
            throw new ArtifactStoreException(uri, $"{Endpoint} did not keep the x-amz-meta-{Sha256MetadataKey} metadata of the upload.");
        }

        if (info.Sha256 != sha256)
        {
            throw new ArtifactIntegrityException(uri, "recorded sha256", sha256, info.Sha256);
        }

        return info;
    }

    private async Task<ArtifactInfo> HeadAsync(S3Location location, Uri uri, CancellationToken ct)
    {
        GetObjectMetadataResponse response;
        try
        {
            response = await client.GetObjectMetadataAsync(
                new GetObjectMetadataRequest { BucketName = location.Bucket, Key = location.Key }, ct);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            // HEAD responses have no body, so a missing bucket looks like a missing key here.
            throw new ArtifactNotFoundException(uri, e);
        }

        return new ArtifactInfo(uri, response.ContentLength, RecordedSha256(response.Metadata), TrimETag(response.ETag), ToOffset(response.LastModified));
    }

    private async Task<bool> IsVerifiedCopyAsync(string localPath, ArtifactInfo info, CancellationToken ct)
    {
        var file = new FileInfo(localPath);
        if (!file.Exists || file.Length != info.Size)
        {
            return false;
        }

        await using var stream = new FileStream(localPath, FileMode.Open, FileAccess.Read, FileShare.Read, 0, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return await HashToEndAsync(stream, ct) == info.Sha256;
    }

    private int PartSizeFor(Uri uri, long? knownLength)
    {
        var partSize = options.PartSizeBytes;
        if (knownLength is { } length && (length + partSize - 1) / partSize > MaxParts)
        {
            var mib = ArtifactStoreS3Options.MiB;
            partSize = ((length + MaxParts - 1) / MaxParts + mib - 1) / mib * mib;
            if (partSize > int.MaxValue / 2)
            {
                throw new ArgumentException($"'{uri}' ({length} bytes) is too large for a multipart upload of {MaxParts} parts.");
            }
        }

        return (int)partSize;
    }

    private static string StagingKey(string key)
    {
        var slash = key.LastIndexOf('/');
        return key[..(slash + 1)] + ArtifactLocations.PartialName(key[(slash + 1)..]);
    }

    private async Task TryAbortAsync(S3Location target, string uploadId, Uri uri)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await client.AbortMultipartUploadAsync(
                new AbortMultipartUploadRequest { BucketName = target.Bucket, Key = target.Key, UploadId = uploadId }, timeout.Token);
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or OperationCanceledException)
        {
            logger.LogWarning(e, "Could not abort multipart upload {UploadId} for {Uri}; the bucket keeps its parts until a lifecycle rule removes them", uploadId, uri);
        }
    }

    private async Task TryDeleteObjectAsync(S3Location location)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = location.Bucket, Key = location.Key }, timeout.Token);
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or OperationCanceledException)
        {
            logger.LogWarning(e, "Could not delete {Key} from bucket {Bucket}", location.Key, location.Bucket);
        }
    }

    /// <summary>Turns SDK failures into errors that name the artifact and the endpoint.</summary>
    private async Task<T> TranslateAsync<T>(Uri uri, Func<Task<T>> action, CancellationToken ct)
    {
        try
        {
            return await action();
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchKey")
        {
            throw new ArtifactNotFoundException(uri, e);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchBucket")
        {
            throw new ArtifactStoreException(uri, $"bucket '{uri.Host}' does not exist at {Endpoint}.", e);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.Forbidden)
        {
            throw new ArtifactStoreException(
                uri, $"{Endpoint} denied access ({e.ErrorCode}: {e.Message}); check {ArtifactStoreOptions.SectionName}:S3:AccessKey/SecretKey.", e);
        }
        catch (AmazonS3Exception e)
        {
            throw new ArtifactStoreException(uri, $"{Endpoint} answered {(int)e.StatusCode} {e.ErrorCode}: {e.Message}", e,
                transient: (int)e.StatusCode >= 500 || e.StatusCode == HttpStatusCode.TooManyRequests || e.ErrorCode == "SlowDown");
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            throw new ArtifactStoreException(uri, $"S3 endpoint {Endpoint} is unreachable ({Innermost(e).Message}).", e, transient: true);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new ArtifactStoreException(uri, $"S3 endpoint {Endpoint} did not answer within {options.RequestTimeout}.", e, transient: true);
        }
        catch (AmazonClientException e)
        {
            throw new ArtifactStoreException(uri, $"the S3 client failed: {e.Message}", e);
        }
    }

    private Task TranslateAsync(Uri uri, Func<Task> action, CancellationToken ct) =>
        TranslateAsync(uri, async () => { await action(); return true; }, ct);

    private static bool IsConnectionFailure(Exception e)
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (current is HttpRequestException or HttpIOException or SocketException)
            {
                return true;
            }
        }

        return false;
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }

    private static async Task<string> HashToEndAsync(Stream stream, CancellationToken ct)
    {
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(HashBufferSize);
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer.AsMemory(0, HashBufferSize), ct)) > 0)
            {
                sha256.AppendData(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return StreamReading.ToHex(sha256.GetHashAndReset());
    }

    private static string? RecordedSha256(MetadataCollection metadata)
    {
        var value = metadata[Sha256MetadataKey];
        return value is { Length: 64 } ? value.ToLowerInvariant() : null;
    }

    private static string? TrimETag(string? etag) => etag?.Trim('"').ToLowerInvariant();

    private static bool IsMd5Hex(string? etag) => etag is { Length: 32 } && etag.All(char.IsAsciiHexDigitLower);

    private static DateTimeOffset ToOffset(DateTime? value) => value switch
    {
        null => DateTimeOffset.MinValue,
        { Kind: DateTimeKind.Utc } v => new DateTimeOffset(v, TimeSpan.Zero),
        { } v => new DateTimeOffset(v.ToUniversalTime(), TimeSpan.Zero),
    };

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The bytes already read to decide between one request and a multipart upload, then the rest of the stream.</summary>
    private sealed class PrefixedSource(byte[] head, int headLength, Stream rest)
    {
        private int _headOffset;

        public async ValueTask<int> FillAsync(Memory<byte> destination, CancellationToken ct)
        {
            var fromHead = Math.Min(headLength - _headOffset, destination.Length);
            head.AsMemory(_headOffset, fromHead).CopyTo(destination);
            _headOffset += fromHead;
            return fromHead + await StreamReading.ReadFullAsync(rest, destination[fromHead..], ct);
        }
    }
}
