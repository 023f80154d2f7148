namespace NvDinoPipeline.Storage;

public static class ArtifactUriExtensions
{
    /// <summary><paramref name="uri"/> as a folder: ending with '/', so that <see cref="Append"/> and relative URIs resolve inside it.</summary>
    public static Uri AsFolder(this Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
    }

    /// <summary>Appends a relative '/'-separated path to a folder URI (one ending with '/'), escaping each segment,
    /// e.g. <c>store.JobFolder(p, j).Append("checkpoints/model.pth")</c>. A trailing '/' makes a folder URI.</summary>
    public static Uri Append(this Uri folder, string relativePath)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentException.ThrowIfNullOrEmpty(relativePath);
        if (!folder.IsAbsoluteUri || !folder.AbsolutePath.EndsWith('/'))
        {
            throw new ArgumentException($"'{folder}' is not an absolute folder URI ending with '/'.", nameof(folder));
        }

        var segments = relativePath.Split('/');
        if (relativePath.StartsWith('/') || segments[..^1].Any(s => s is "" or "." or "..") || segments[^1] is "." or "..")
        {
            throw new ArgumentException($"'{relativePath}' is not a plain relative path (no leading '/', empty, '.' or '..' segments).", nameof(relativePath));
        }

        return new Uri(folder.AbsoluteUri + ArtifactLocations.EscapePath(relativePath));
    }

    /// <summary>
    /// The location a user wrote as a URI: an absolute local path (<c>/data/x</c>) or a URI (<c>file:///data/x</c>,
    /// <c>s3://bucket/x</c>; other schemes too, for the store to refuse by name). False for anything else, such as a
    /// name relative to some folder.
    /// </summary>
    public static bool TryParseLocation(string? value, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Uri? location)
    {
        location = null;
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }

        if (value.StartsWith('/'))
        {
            location = ArtifactLocations.FromLocalPath(Path.GetFullPath(value));
            return true;
        }

        return value.Contains("://", StringComparison.Ordinal) && Uri.TryCreate(value, UriKind.Absolute, out location);
    }
}
