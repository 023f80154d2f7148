namespace NvDinoPipeline.Storage;

/// <summary>The artifact named by <see cref="Uri"/> does not exist.</summary>
public sealed class ArtifactNotFoundException(Uri uri, Exception? innerException = null)
    : FileNotFoundException($"Artifact '{uri}' does not exist.", uri.ToString(), innerException)
{
    public Uri Uri { get; } = uri;
}
