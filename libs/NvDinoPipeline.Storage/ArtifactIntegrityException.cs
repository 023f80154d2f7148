namespace NvDinoPipeline.Storage;

/// <summary>Stored bytes do not match what was written (hash, size or entity tag mismatch).</summary>
public sealed class ArtifactIntegrityException(Uri uri, string what, string expected, string actual)
    : IOException($"Artifact '{uri}' is corrupt: {what} expected {expected} but was {actual}.")
{
    public Uri Uri { get; } = uri;
    public string Expected { get; } = expected;
    public string Actual { get; } = actual;
}
