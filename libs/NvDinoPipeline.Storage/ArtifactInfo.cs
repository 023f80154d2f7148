namespace NvDinoPipeline.Storage;

/// <summary>What the store knows about one stored object.</summary>
/// <param name="Uri">Absolute location (<c>file:///…</c> or <c>s3://bucket/key</c>).</param>
/// <param name="Size">Length in bytes.</param>
/// <param name="Sha256">Lower-case hex SHA-256 recorded when this store wrote the object; null when unknown
/// (objects written by other tools, and every entry returned by <see cref="IArtifactStore.ListAsync"/>).</param>
/// <param name="ETag">The S3 entity tag without quotes; null for files.</param>
/// <param name="LastModified">Last write time reported by the backend.</param>
public sealed record ArtifactInfo(Uri Uri, long Size, string? Sha256, string? ETag, DateTimeOffset LastModified);
