using System.Collections.Concurrent;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace NvDinoPipeline.Storage.Tests;

/// <summary>
/// The S3-compatible server the S3 tests run against (s3rver started by scripts/services/s3rver.sh), named by
/// NVDINO_TEST_S3_URL / _ACCESS_KEY / _SECRET_KEY. Without them every S3 test fails: a skipped storage
/// backend would look like a tested one.
/// </summary>
public sealed class S3TestServer : IAsyncLifetime
{
    private readonly ConcurrentBag<string> _buckets = [];

    public S3TestServer()
    {
        ServiceUrl = Environment.GetEnvironmentVariable("NVDINO_TEST_S3_URL") ?? "";
        AccessKey = Environment.GetEnvironmentVariable("NVDINO_TEST_S3_ACCESS_KEY") ?? "";
        SecretKey = Environment.GetEnvironmentVariable("NVDINO_TEST_S3_SECRET_KEY") ?? "";
        if (ServiceUrl.Length == 0 || AccessKey.Length == 0 || SecretKey.Length == 0)
        {
            throw new InvalidOperationException(
                "The S3 tests need an S3-compatible server: NVDINO_TEST_S3_URL, NVDINO_TEST_S3_ACCESS_KEY and NVDINO_TEST_S3_SECRET_KEY are not all set. "
                + "Run scripts/test.sh, or start s3rver with `scripts/services/s3rver.sh start` and `eval \"$(scripts/services/s3rver.sh env)\"`.");
        }

        // A plain client for test set-up only; uploads through it disable chunk encoding per request.
        Client = new AmazonS3Client(
            new BasicAWSCredentials(AccessKey, SecretKey),
            new AmazonS3Config
            {
                ServiceURL = ServiceUrl,
                ForcePathStyle = true,
                AuthenticationRegion = "us-east-1",
                MaxErrorRetry = 0,
                RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
                ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            });
    }

    public string ServiceUrl { get; }
    public string AccessKey { get; }
    public string SecretKey { get; }
    public IAmazonS3 Client { get; }

    public async Task<string> CreateBucketAsync(CancellationToken ct)
    {
        var name = $"nvdino-test-{Guid.NewGuid():N}"[..40];
        try
        {
            await Client.PutBucketAsync(new PutBucketRequest { BucketName = name }, ct);
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException(
                $"No S3 server answers at NVDINO_TEST_S3_URL={ServiceUrl}; start it with `scripts/services/s3rver.sh start`.", e);
        }

        _buckets.Add(name);
        return name;
    }

    /// <summary>Every key in the bucket, including the store's hidden staging keys.</summary>
    public async Task<List<string>> AllKeysAsync(string bucket, CancellationToken ct)
    {
        var response = await Client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket }, ct);
        return (response.S3Objects ?? []).Select(o => o.Key).ToList();
    }

    public ArtifactStore CreateStore(string root, Action<ArtifactStoreS3Options>? configure = null, CapturingLoggerFactory? logs = null) =>
        TestStores.Create(
            root,
            o =>
            {
                o.S3.ServiceUrl = ServiceUrl;
                o.S3.AccessKey = AccessKey;
                o.S3.SecretKey = SecretKey;
                configure?.Invoke(o.S3);
            },
            logs);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var bucket in _buckets)
        {
            try
            {
                foreach (var key in await AllKeysAsync(bucket, CancellationToken.None))
                {
                    await Client.DeleteObjectAsync(bucket, key);
                }

                await Client.DeleteBucketAsync(bucket);
            }
            catch (AmazonServiceException)
            {
                // Left-over test buckets only cost disk space in the server's scratch folder.
            }
        }

        Client.Dispose();
    }
}
