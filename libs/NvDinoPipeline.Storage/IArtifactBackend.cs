namespace NvDinoPipeline.Storage;

/// <summary>One URI scheme's implementation; <see cref="ArtifactStore"/> routes to it. Arguments are already checked
/// to be absolute URIs of this backend's scheme.</summary>
internal interface IArtifactBackend
{
    Task<ArtifactInfo> PutAsync(Uri destination, Stream content, CancellationToken ct);
    Task<Stream> OpenReadAsync(Uri source, CancellationToken ct);
    Task<ArtifactInfo?> GetInfoAsync(Uri uri, CancellationToken ct);
    IAsyncEnumerable<ArtifactInfo> ListAsync(Uri prefix, CancellationToken ct);
    Task DeleteAsync(Uri uri, CancellationToken ct);
    Task<string> GetLocalPathAsync(Uri uri, string scratchDirectory, CancellationToken ct);
}
