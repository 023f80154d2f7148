namespace NvDinoPipeline.Storage;

/// <summary>
/// Object storage for pipeline artifacts, addressed by absolute URIs: <c>file:///abs/path</c> or
/// <c>s3://bucket/key</c>. Writes become visible atomically: a reader sees either the previous object,
/// nothing, or the complete new object.
/// </summary>
public interface IArtifactStore
{
    /// <summary>Configured root folder, always ending with '/', e.g. <c>file:///var/lib/nvdino/artifacts/</c> or <c>s3://bucket/prefix/</c>.</summary>
    Uri Root { get; }

    /// <summary>What the store may read and write; every call below is checked against it before anything is opened
    /// (<see cref="ArtifactAccessDeniedException"/> when refused).</summary>
    ArtifactAccessPolicy Access { get; }

    /// <summary>The folder of one job: <c>&lt;root&gt;/&lt;pipelineId&gt;/&lt;jobId&gt;/</c> (trailing slash).</summary>
    Uri JobFolder(Guid pipelineId, Guid jobId);

    /// <summary>Streams <paramref name="content"/> to <paramref name="destination"/>, replacing any existing object.
    /// SHA-256 and size are computed while streaming and recorded with the object. When the call fails or is
    /// cancelled no partial object is left visible.</summary>
    Task<ArtifactInfo> PutAsync(Uri destination, Stream content, CancellationToken ct);

    /// <summary>Uploads a local file; see <see cref="PutAsync"/>.</summary>
    Task<ArtifactInfo> PutFileAsync(Uri destination, string localPath, CancellationToken ct);

    /// <summary>Opens the object for sequential reading. Throws <see cref="ArtifactNotFoundException"/> when it does not exist.
    /// For S3 objects the recorded SHA-256 is checked when the stream is read to its end
    /// (<see cref="ArtifactIntegrityException"/> on mismatch).</summary>
    Task<Stream> OpenReadAsync(Uri source, CancellationToken ct);

    /// <summary>Size, hash and timestamps of the object, or null when it does not exist.</summary>
    Task<ArtifactInfo?> GetInfoAsync(Uri uri, CancellationToken ct);

    /// <summary>Every object whose URI starts with <paramref name="prefix"/>, recursively. Empty (never null) when
    /// nothing matches. Entries carry no <see cref="ArtifactInfo.Sha256"/>; ask <see cref="GetInfoAsync"/> for it.</summary>
    IAsyncEnumerable<ArtifactInfo> ListAsync(Uri prefix, CancellationToken ct);

    /// <summary>Deletes one object. Deleting an object that does not exist succeeds (handlers may run twice).</summary>
    Task DeleteAsync(Uri uri, CancellationToken ct);

    /// <summary>A local file holding the object's content. For <c>file://</c> the path itself (no copy); for
    /// <c>s3://</c> a download into <paramref name="scratchDirectory"/> verified against the recorded SHA-256
    /// (an existing verified copy is reused).</summary>
    Task<string> GetLocalPathAsync(Uri uri, string scratchDirectory, CancellationToken ct);
}
