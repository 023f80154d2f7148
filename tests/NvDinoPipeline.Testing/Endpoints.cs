namespace NvDinoPipeline.Testing;

/// <summary>A RabbitMQ broker: AMQP address with credentials, and its management API when it has one.</summary>
public sealed record RabbitMqEndpoint
{
    /// <summary>For example <c>amqp://guest:guest@127.0.0.1:56720/</c> (default virtual host).</summary>
    public required Uri Uri { get; init; }

    /// <summary>For example <c>http://guest:guest@127.0.0.1:56729/</c>; null when the broker exposes none.</summary>
    public Uri? ManagementUri { get; init; }
}

/// <summary>An S3-compatible server (s3rver in tests).</summary>
public sealed record S3Endpoint
{
    /// <summary>For example <c>http://127.0.0.1:45690</c>; path-style addressing is required.</summary>
    public required Uri ServiceUrl { get; init; }

    public required string AccessKey { get; init; }

    public required string SecretKey { get; init; }

    public string Region { get; init; } = "us-east-1";
}
