namespace NvDinoPipeline.Datasets.Images;

/// <summary>The paths images are staged under, and the class a folder layout gives them.</summary>
public static class ImagePaths
{
    /// <summary>
    /// The name of the folder holding <paramref name="path"/>: its class where images come in class folders (as
    /// ImageNet and TAO's classification data do); null for an image at the data's root.
    /// </summary>
    public static string? ClassFolderOf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var parts = Normalise(path).Split('/');
        return parts.Length >= 2 && parts[^2].Length > 0 ? parts[^2] : null;
    }

    /// <summary>'/'-separated, without a leading <c>./</c> or <c>/</c>: the form staged paths take.</summary>
    public static string Normalise(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var normal = path.Trim().Replace('\\', '/');
        while (normal.StartsWith("./", StringComparison.Ordinal))
        {
            normal = normal[2..];
        }
        return normal.TrimStart('/');
    }
}
