namespace NvDinoPipeline.Storage;

/// <summary>Settings of the artifact store, bound to the configuration section <c>ArtifactStore</c>.</summary>
public sealed class ArtifactStoreOptions
{
    public const string SectionName = "ArtifactStore";

    /// <summary>Root folder for job artifacts: <c>file:///abs/path/</c>, an absolute local path, or <c>s3://bucket/prefix/</c>.
    /// Defaults to <c>.nvdino/artifacts</c> under the working directory.</summary>
    public string Root { get; set; } = new Uri(Path.GetFullPath(Path.Combine(".nvdino", "artifacts")) + "/").AbsoluteUri;

    /// <summary>Folders (<c>file:///…/</c> or absolute paths) and buckets or prefixes (<c>s3://bucket/prefix/</c>) that may be
    /// read besides <see cref="Root"/>: where datasets, pretrained weights and other inputs live. Nothing else is read.</summary>
    public List<string> AllowedReadRoots { get; set; } = [];

    public ArtifactStoreS3Options S3 { get; set; } = new();

    /// <summary><see cref="Root"/> as an absolute URI ending with '/'. Throws <see cref="ArgumentException"/> when invalid.</summary>
    public Uri GetRootUri() => ArtifactLocations.ParseRoot(Root, $"{SectionName}:{nameof(Root)}");

    /// <summary><see cref="AllowedReadRoots"/> as absolute URIs ending with '/'. Throws <see cref="ArgumentException"/> naming the entry when one is invalid.</summary>
    public IReadOnlyList<Uri> GetAllowedReadRootUris() =>
        [.. (AllowedReadRoots ?? []).Select((root, index) => ArtifactLocations.ParseRoot(root, $"{SectionName}:{nameof(AllowedReadRoots)}:{index}"))];
}

/// <summary>S3 connection settings (section <c>ArtifactStore:S3</c>). Used for every <c>s3://</c> URI.</summary>
public sealed class ArtifactStoreS3Options
{
    public const long MiB = 1024 * 1024;

    /// <summary>Endpoint of an S3-compatible server (e.g. <c>http://127.0.0.1:45690</c>); null for AWS.</summary>
    public string? ServiceUrl { get; set; }

    /// <summary>Region; with <see cref="ServiceUrl"/> it is the signing region (default us-east-1), otherwise the AWS
    /// region (default: the SDK's region chain, e.g. AWS_REGION).</summary>
    public string? Region { get; set; }

    /// <summary>Access key and secret key; when both are absent the AWS SDK's default credential chain is used.</summary>
    public string? AccessKey { get; set; }
    public string? SecretKey { get; set; }
    public string? SessionToken { get; set; }

    /// <summary>Path-style addressing (<c>http://host/bucket/key</c>). Default: true with <see cref="ServiceUrl"/>, false for AWS.</summary>
    public bool? ForcePathStyle { get; set; }

    /// <summary>aws-chunked request bodies. Default: off with <see cref="ServiceUrl"/> (s3rver and other servers store the
    /// chunk framing verbatim as object content), SDK default for AWS.</summary>
    public bool? ChunkedEncoding { get; set; }

    /// <summary>Send <c>UNSIGNED-PAYLOAD</c> instead of hashing each request body for the signature (honoured by the SDK over HTTPS only).</summary>
    public bool DisablePayloadSigning { get; set; }

    /// <summary>Compare ETags with the MD5 of the sent bytes. Turn off for buckets whose ETags are not MD5s (SSE-KMS).</summary>
    public bool VerifyETag { get; set; } = true;

    /// <summary>Objects larger than this go up as a multipart upload; smaller ones in one request (held in memory).</summary>
    public long MultipartThresholdBytes { get; set; } = 16 * MiB;

    /// <summary>Part size of multipart uploads (two parts are held in memory while streaming). S3 needs 5 MiB at least.</summary>
    public long PartSizeBytes { get; set; } = 16 * MiB;

    /// <summary>Retries of the AWS SDK for failed requests.</summary>
    public int MaxErrorRetry { get; set; } = 3;

    /// <summary>Timeout of one HTTP request.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(5);
}
