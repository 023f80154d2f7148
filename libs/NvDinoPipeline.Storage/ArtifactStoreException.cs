namespace NvDinoPipeline.Storage;

/// <summary>The storage backend refused or could not serve a request (unreachable endpoint, missing bucket, access denied).</summary>
public sealed class ArtifactStoreException(Uri uri, string message, Exception? innerException = null, bool transient = false)
    : IOException($"Artifact store request for '{uri}' failed: {message}", innerException)
{
    public Uri Uri { get; } = uri;

    /// <summary>The fault passes by itself (the endpoint is unreachable, timed out or answered 5xx); the request is worth repeating later.</summary>
    public bool Transient { get; } = transient;
}
