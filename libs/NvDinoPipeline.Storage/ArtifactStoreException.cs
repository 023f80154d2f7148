namespace NvDinoPipeline.Storage;

/// <summary>The storage backend refused or could not serve a request (unreachable endpoint, missing bucket, access denied).</summary>
public sealed class ArtifactStoreException(Uri uri, string message, Exception? innerException = null)
    : IOException($"Artifact store request for '{uri}' failed: {message}", innerException)
{
    public Uri Uri { get; } = uri;
}
