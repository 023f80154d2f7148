namespace NvDinoPipeline.Storage;

/// <summary>
/// Where an absolute path really leads, following every symbolic link on the way as the kernel does (a link's
/// <c>..</c> climbs from where the link points). Components that do not exist yet are appended as written, so the
/// destination of a file about to be created resolves too.
/// </summary>
internal static class RealPath
{
    // The kernel's own limit (MAXSYMLINKS) before open(2) fails with ELOOP.
    private const int MaxLinks = 40;

    public static string Resolve(string absolutePath)
    {
        var pending = new LinkedList<string>(Segments(absolutePath));
        var current = "/";
        var links = 0;
        while (pending.First is { } first)
        {
            var segment = first.Value;
            pending.RemoveFirst();
            if (segment is "" or ".")
            {
                continue;
            }
            if (segment == "..")
            {
                current = Path.GetDirectoryName(current) ?? "/";
                continue;
            }

            var next = Path.Join(current, segment);
            if (new FileInfo(next).LinkTarget is not { } target)
            {
                if (!Path.Exists(next))
                {
                    // Nothing further exists, so nothing further can be a link: once created, '..' climbs lexically.
                    return Path.GetFullPath(pending.Aggregate(next, (path, rest) => rest.Length == 0 ? path : Path.Join(path, rest)));
                }
                current = next;
                continue;
            }
            if (++links > MaxLinks)
            {
                throw new IOException($"More than {MaxLinks} symbolic links on the way to '{absolutePath}'.");
            }
            if (Path.IsPathRooted(target))
            {
                current = "/";
            }
            foreach (var part in Segments(target).Reverse())
            {
                pending.AddFirst(part);
            }
        }
        return current;
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="folder"/> or lies below it (both absolute).</summary>
    public static bool IsWithin(string path, string folder)
    {
        var trimmed = folder.TrimEnd('/');
        return path == trimmed || path == folder || path.StartsWith(trimmed + "/", StringComparison.Ordinal) || trimmed.Length == 0;
    }

    private static string[] Segments(string path) => path.Split('/');
}
