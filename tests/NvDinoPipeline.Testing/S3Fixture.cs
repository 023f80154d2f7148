namespace NvDinoPipeline.Testing;

/// <summary>
/// The S3-compatible test server, checked to answer before the first test of the class or collection runs.
/// Buckets are the tests' own: name them with <see cref="NewBucketName"/>.
/// </summary>
public sealed class S3Fixture : IAsyncLifetime
{
    public S3Endpoint Endpoint { get; private set; } = null!;

    /// <summary>A bucket name no other test uses, e.g. <c>nvdino-test-3f2a9c01b2d4</c>.</summary>
    public static string NewBucketName(string prefix = "nvdino-test") => TestServices.UniqueName(prefix);

    public async Task InitializeAsync()
    {
        Endpoint = TestServices.S3;
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            using var response = await client.GetAsync(Endpoint.ServiceUrl);
        }
        catch (HttpRequestException e)
        {
            throw new TestServiceUnavailableException(
                $"The S3 server at {Endpoint.ServiceUrl} ({TestServices.S3UrlVariable}) does not answer: {e.Message}. " +
                TestServices.HowToStart("s3rver"), e);
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;
}
