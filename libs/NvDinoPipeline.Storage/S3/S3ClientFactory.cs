using Amazon;
using Amazon.Runtime;
using Amazon.S3;

namespace NvDinoPipeline.Storage.S3;

internal static class S3ClientFactory
{
    public static IAmazonS3 Create(ArtifactStoreS3Options options)
    {
        var customEndpoint = !string.IsNullOrWhiteSpace(options.ServiceUrl);
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.ForcePathStyle ?? customEndpoint,
            MaxErrorRetry = options.MaxErrorRetry,
            Timeout = options.RequestTimeout,
        };

        if (customEndpoint)
        {
            config.ServiceURL = options.ServiceUrl;
            config.AuthenticationRegion = string.IsNullOrWhiteSpace(options.Region) ? "us-east-1" : options.Region;

            // Flexible checksums (CRC32 trailers, response validation) are an AWS extension that S3-compatible
            // servers handle unevenly; integrity is checked by this store through Content-MD5, ETags and SHA-256.
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }
        else if (!string.IsNullOrWhiteSpace(options.Region))
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }

        var chunked = options.ChunkedEncoding ?? !customEndpoint;
        AWSCredentials? credentials = string.IsNullOrEmpty(options.AccessKey)
            ? null
            : string.IsNullOrEmpty(options.SessionToken)
                ? new BasicAWSCredentials(options.AccessKey, options.SecretKey)
                : new SessionAWSCredentials(options.AccessKey, options.SecretKey, options.SessionToken);

        return (chunked, credentials) switch
        {
            (true, null) => new AmazonS3Client(config),
            (true, not null) => new AmazonS3Client(credentials, config),
            (false, null) => new CompatibleS3Client(config),
            (false, not null) => new CompatibleS3Client(credentials, config),
        };
    }
}
