using Microsoft.Extensions.Options;

namespace NvDinoPipeline.Storage;

/// <summary>Rejects settings that would only fail later, at the first upload, with a message naming the key.</summary>
public sealed class ArtifactStoreOptionsValidator : IValidateOptions<ArtifactStoreOptions>
{
    // Buffers are single arrays; S3 itself allows parts up to 5 GiB, which no host should hold twice in memory.
    private const long MaxBufferBytes = 1024 * ArtifactStoreS3Options.MiB;
    private const long MinPartBytes = 5 * ArtifactStoreS3Options.MiB;

    public ValidateOptionsResult Validate(string? name, ArtifactStoreOptions options)
    {
        var failures = new List<string>();
        const string section = ArtifactStoreOptions.SectionName;
        try
        {
            options.GetRootUri();
        }
        catch (ArgumentException e)
        {
            failures.Add(e.Message);
        }

        try
        {
            options.GetAllowedReadRootUris();
        }
        catch (ArgumentException e)
        {
            failures.Add(e.Message);
        }

        var s3 = options.S3;
        if (s3 is null)
        {
            failures.Add($"{section}:S3 must not be null.");
            return ValidateOptionsResult.Fail(failures);
        }

        if (!string.IsNullOrWhiteSpace(s3.ServiceUrl)
            && (!Uri.TryCreate(s3.ServiceUrl, UriKind.Absolute, out var serviceUrl) || serviceUrl.Scheme is not ("http" or "https")))
        {
            failures.Add($"{section}:S3:ServiceUrl '{s3.ServiceUrl}' is not an absolute http:// or https:// URL.");
        }

        if (string.IsNullOrEmpty(s3.AccessKey) != string.IsNullOrEmpty(s3.SecretKey))
        {
            failures.Add($"{section}:S3:AccessKey and {section}:S3:SecretKey must be given together (or both left out to use the AWS default credential chain).");
        }

        if (s3.PartSizeBytes is < MinPartBytes or > MaxBufferBytes)
        {
            failures.Add($"{section}:S3:PartSizeBytes is {s3.PartSizeBytes}; it must be between {MinPartBytes} (5 MiB, the S3 minimum) and {MaxBufferBytes} (1 GiB).");
        }

        if (s3.MultipartThresholdBytes is < 0 or > MaxBufferBytes)
        {
            failures.Add($"{section}:S3:MultipartThresholdBytes is {s3.MultipartThresholdBytes}; it must be between 0 and {MaxBufferBytes} (1 GiB).");
        }

        if (s3.MaxErrorRetry is < 0 or > 20)
        {
            failures.Add($"{section}:S3:MaxErrorRetry is {s3.MaxErrorRetry}; it must be between 0 and 20.");
        }

        if (s3.RequestTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{section}:S3:RequestTimeout is {s3.RequestTimeout}; it must be positive.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
