using System.Security.Cryptography;
using Amazon.S3.Model;

namespace NvDinoPipeline.Storage.Tests;

public sealed class S3ArtifactStoreTests(S3TestServer server) : IClassFixture<S3TestServer>, IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromMinutes(2));
    private readonly TempFolder _scratch = new();

    private CancellationToken Ct => _timeout.Token;

    public void Dispose()
    {
        _scratch.Dispose();
        _timeout.Dispose();
    }

    [Fact]
    public async Task Small_object_round_trip_keeps_bytes_sha256_and_an_md5_etag()
    {
        var bucket = await server.CreateBucketAsync(Ct);
        using var store = server.CreateStore($"s3://{bucket}/artifacts");
        var data = RandomNumberGenerator.GetBytes(300_000);
        var uri = store.JobFolder(Guid.NewGuid(), Guid.NewGuid()).Append("inference.csv");

        var written = await store.PutAsync(uri, new MemoryStream(data), Ct);

        var sha = Convert.ToHexStringLower(SHA256.HashData(data));
        Assert.Equal(sha, written.Sha256);
        Assert.Equal(Convert.ToHexStringLower(MD5.HashData(data)), written.ETag);
        Assert.Equal(written, await store.GetInfoAsync(uri, Ct));
        await using var read = await store.OpenReadAsync(uri, Ct);
        var copy = new MemoryStream();
        await read.CopyToAsync(copy, Ct);
        Assert.Equal(data, copy.ToArray());
    }

    [Fact]
    public async Task A_50_MB_file_goes_up_in_parts_and_comes_back_identical()
    {
        var bucket = await server.CreateBucketAsync(Ct);
        var logs = new CapturingLoggerFactory();
        using var store = server.CreateStore($"s3://{bucket}/", logs: logs);
        var local = Path.Combine(_scratch.Path, "checkpoint.pth");
        await using (var file = File.Create(local))
        {
            await new GeneratedStream(50L * MiB, seed: 50).CopyToAsync(file, Ct);
        }

        var uri = store.Root.Append("models/checkpoint.pth");
        var written = await store.PutFileAsync(uri, local, Ct);

        var expectedSha = GeneratedStream.Sha256Of(50L * MiB, seed: 50);
        Assert.Equal(expectedSha, written.Sha256);
        Assert.Equal(50L * MiB, written.Size);
        Assert.True(PartCount(logs, uri) >= 2, "the upload should have been a multipart upload");
        await using var read = await store.OpenReadAsync(uri, Ct);
        Assert.Equal((50L * MiB, expectedSha), await StreamHashing.HashAsync(read, Ct));
    }

    [Fact]
    public async Task A_120_MB_generated_stream_is_streamed_up_in_parts_and_records_its_sha256()
    {
        const long length = 120L * MiB + 12345;
        var bucket = await server.CreateBucketAsync(Ct);
        var logs = new CapturingLoggerFactory();
        using var store = server.CreateStore($"s3://{bucket}/", logs: logs);
        var uri = store.Root.Append("datasets/shard-000.tar");
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        using var peak = new PeakMemorySampler();

        var written = await store.PutAsync(uri, new GeneratedStream(length, seed: 120), Ct);

        var peakGrowth = peak.Stop() - baseline;
        Console.WriteLine($"peak managed memory growth while uploading {length} bytes: {peakGrowth / MiB} MiB");
        Assert.True(peakGrowth < 90L * MiB, $"the upload held {peakGrowth / MiB} MiB; the object must not be held in memory");

        var expectedSha = GeneratedStream.Sha256Of(length, seed: 120);
        Assert.Equal(expectedSha, written.Sha256);
        Assert.Equal(length, written.Size);
        Assert.Equal(expectedSha, (await store.GetInfoAsync(uri, Ct))!.Sha256);
        Assert.True(PartCount(logs, uri) >= 2, "the upload should have been a multipart upload");
        Assert.Equal(["datasets/shard-000.tar"], await server.AllKeysAsync(bucket, Ct));
        await using var read = await store.OpenReadAsync(uri, Ct);
        Assert.Equal((length, expectedSha), await StreamHashing.HashAsync(read, Ct));
    }

    [Fact]
    public async Task A_multipart_upload_is_invisible_until_complete()
    {
        var bucket = await server.CreateBucketAsync(Ct);
        using var store = server.CreateStore($"s3://{bucket}/", o => (o.MultipartThresholdBytes, o.PartSizeBytes) = (5 * MiB, 5 * MiB));
        var uri = store.Root.Append("model.onnx");
        var source = new GatedStream(new GeneratedStream(13L * MiB, seed: 7), before: 11L * MiB);

        var put = store.PutAsync(uri, source, Ct);
        await source.ReachedGate.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Null(await store.GetInfoAsync(uri, Ct));
        Assert.Empty(await store.ListAsync(store.Root, Ct).ToListAsync(Ct));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => store.OpenReadAsync(uri, Ct));

        source.Release();
        var written = await put;
        Assert.Equal(GeneratedStream.Sha256Of(13L * MiB, seed: 7), written.Sha256);
        Assert.Equal([uri], await store.ListAsync(store.Root, Ct).Select(i => i.Uri).ToListAsync(Ct));
    }

    [Fact]
    public async Task A_failing_stream_in_a_multipart_upload_leaves_no_object_and_no_staging_key()
    {
        var bucket = await server.CreateBucketAsync(Ct);
        using var store = server.CreateStore($"s3://{bucket}/", o => (o.MultipartThresholdBytes, o.PartSizeBytes) = (5 * MiB, 5 * MiB));
        var uri = store.Root.Append("broken.bin");
        var source = new GatedStream(new GeneratedStream(20L * MiB, seed: 3), before: 12L * MiB, failAtGate: true);
        source.Release();

        await Assert.ThrowsAsync<IOException>(() => store.PutAsync(uri, source, Ct));

        Assert.Null(await store.GetInfoAsync(uri, Ct));
        Assert.Empty(await server.AllKeysAsync(bucket, Ct));
    }

    [Fact]
    public async Task Listing_is_recursive_and_an_unmatched_prefix_gives_an_empty_list()
    {
        var bucket = await server.CreateBucketAsync(Ct);
        using var store = server.CreateStore($"s3://{bucket}/runs/");
        var job = store.JobFolder(Guid.NewGuid(), Guid.NewGuid());
        foreach (var name in new[] { "a.bin", "checkpoints/epoch 1.pth", "checkpoints/epoch2.pth" })
        {
            await store.PutAsync(job.Append(name), new MemoryStream([1, 2]), Ct);
        }

        var listed = await store.ListAsync(job, Ct).ToListAsync(Ct);

        Assert.Equal(new[] { "a.bin", "checkpoints/epoch 1.pth", "checkpoints/epoch2.pth" }.Select(job.Append), listed.Select(i => i.Uri));
        Assert.All(listed, i => Assert.Equal(2, i.Size));
        Assert.Empty(await store.ListAsync(job.Append("nothing-here/"), Ct).ToListAsync(Ct));
        Assert.Empty(await store.ListAsync(store.Root.Append("no-such-prefix"), Ct).ToListAsync(Ct));
    }

    [Fact]
    public async Task A_missing_object_is_reported_with_its_uri()
    {
        var bucket = await server.CreateBucketAsync(Ct);
        using var store = server.CreateStore($"s3://{bucket}/");
        var uri = store.Root.Append("missing/model.onnx");

        var error = await Assert.ThrowsAsync<ArtifactNotFoundException>(() => store.OpenReadAsync(uri, Ct));

        Assert.Contains(uri.ToString(), error.Message);
        Assert.Null(await store.GetInfoAsync(uri, Ct));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => store.GetLocalPathAsync(uri, _scratch.Path, Ct));
        await store.DeleteAsync(uri, Ct);
    }

    [Fact]
    public async Task GetLocalPathAsync_downloads_a_verified_copy_and_rejects_a_corrupted_object()
    {
        var bucket = await server.CreateBucketAsync(Ct);
        using var store = server.CreateStore($"s3://{bucket}/");
        var data = RandomNumberGenerator.GetBytes(1_000_000);
        var uri = store.Root.Append("exports/teacher.onnx");
        var written = await store.PutAsync(uri, new MemoryStream(data), Ct);

        var path = await store.GetLocalPathAsync(uri, _scratch.Path, Ct);
        var firstWrite = File.GetLastWriteTimeUtc(path);
        var again = await store.GetLocalPathAsync(uri, _scratch.Path, Ct);

        Assert.StartsWith(_scratch.Path, path);
        Assert.EndsWith("teacher.onnx", path);
        Assert.Equal(data, await File.ReadAllBytesAsync(path, Ct));
        Assert.Equal(path, again);
        Assert.Equal(firstWrite, File.GetLastWriteTimeUtc(again));

        // Same length, same recorded hash, different bytes: only the hash check can tell.
        var tampered = (byte[])data.Clone();
        tampered[500_000] ^= 0xFF;
        var overwrite = new PutObjectRequest
        {
            BucketName = bucket,
            Key = "exports/teacher.onnx",
            InputStream = new MemoryStream(tampered),
            UseChunkEncoding = false,
        };
        overwrite.Metadata["sha256"] = written.Sha256;
        await server.Client.PutObjectAsync(overwrite, Ct);
        File.Delete(path);

        var error = await Assert.ThrowsAsync<ArtifactIntegrityException>(() => store.GetLocalPathAsync(uri, _scratch.Path, Ct));

        Assert.Contains(uri.ToString(), error.Message);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public async Task A_server_that_stores_other_bytes_than_sent_is_caught_at_upload()
    {
        // With aws-chunked bodies s3rver stores the chunk framing as the object and answers 200: the ETag
        // check must turn that into an error and leave no corrupt object behind.
        var bucket = await server.CreateBucketAsync(Ct);
        using var store = server.CreateStore($"s3://{bucket}/", o => o.ChunkedEncoding = true);
        var uri = store.Root.Append("model.onnx");

        var error = await Assert.ThrowsAsync<ArtifactIntegrityException>(
            () => store.PutAsync(uri, new MemoryStream(RandomNumberGenerator.GetBytes(100_000)), Ct));

        Assert.Contains(uri.ToString(), error.Message);
        Assert.Contains("ETag", error.Message);
        Assert.Empty(await server.AllKeysAsync(bucket, Ct));
    }

    [Fact]
    public async Task An_unreachable_endpoint_is_named_in_the_error()
    {
        using var store = TestStores.Create("s3://nvdino-unreachable/", o =>
        {
            o.S3.ServiceUrl = "http://127.0.0.1:9";
            o.S3.AccessKey = "x";
            o.S3.SecretKey = "y";
            o.S3.MaxErrorRetry = 0;
        });
        var uri = store.Root.Append("model.onnx");

        var error = await Assert.ThrowsAsync<ArtifactStoreException>(() => store.PutAsync(uri, new MemoryStream([1]), Ct));

        Assert.Contains(uri.ToString(), error.Message);
        Assert.Contains("http://127.0.0.1:9", error.Message);
        Assert.Contains("unreachable", error.Message);
        Assert.True(error.Transient, "an unreachable endpoint is a fault worth retrying");
    }

    [Fact]
    public async Task A_missing_bucket_is_not_a_transient_fault()
    {
        using var store = server.CreateStore("s3://nvdino-no-such-bucket-either/");

        var error = await Assert.ThrowsAsync<ArtifactStoreException>(() => store.PutAsync(store.Root.Append("model.onnx"), new MemoryStream([1]), Ct));

        Assert.False(error.Transient);
    }

    [Fact]
    public async Task A_missing_bucket_is_named_in_the_error()
    {
        using var store = server.CreateStore("s3://nvdino-no-such-bucket/");
        var uri = store.Root.Append("model.onnx");

        var error = await Assert.ThrowsAsync<ArtifactStoreException>(() => store.PutAsync(uri, new MemoryStream([1]), Ct));

        Assert.Contains("bucket 'nvdino-no-such-bucket' does not exist", error.Message);
        Assert.Contains(uri.ToString(), error.Message);
    }

    private static int PartCount(CapturingLoggerFactory logs, Uri uri) =>
        logs.Entries
            .Where(e => e.Values.TryGetValue("Uri", out var u) && Equals(u, uri) && e.Values.ContainsKey("PartCount"))
            .Select(e => Convert.ToInt32(e.Values["PartCount"]))
            .DefaultIfEmpty(0)
            .Single();
}
