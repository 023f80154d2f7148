namespace NvDinoPipeline.Staging.Sources;

/// <summary>
/// Turns an archive entry name or a listed key into the relative path a staged image is known by.
/// Names that could point outside the dataset (absolute, drive-rooted, with '..') are refused rather than
/// repaired: a repaired name would silently collide with another entry.
/// </summary>
internal static class EntryPath
{
    public const int MaxLength = 1024;

    /// <summary>The clean '/'-separated relative path, or null with <paramref name="reason"/> saying why the name is refused.</summary>
    public static string? Normalize(string name, out string reason)
    {
        reason = "";
        if (name.Length == 0)
        {
            reason = "the entry has an empty name";
            return null;
        }
        foreach (var c in name)
        {
            if (char.IsControl(c))
            {
                reason = "the name contains control characters";
                return null;
            }
        }

        // Archives written on Windows separate with '\'; treat it as a separator so "..\x" is caught as well.
        var unified = name.Replace('\\', '/');
        if (unified.StartsWith('/'))
        {
            reason = "the name is an absolute path";
            return null;
        }
        if (unified.Length >= 2 && char.IsAsciiLetter(unified[0]) && unified[1] == ':')
        {
            reason = "the name starts with a drive letter";
            return null;
        }

        var segments = new List<string>();
        foreach (var segment in unified.Split('/'))
        {
            switch (segment)
            {
                case "" or ".":
                    continue;
                case "..":
                    reason = "the name contains a '..' segment that leaves the dataset folder";
                    return null;
                default:
                    segments.Add(segment);
                    break;
            }
        }
        if (segments.Count == 0)
        {
            reason = "the name has no file name";
            return null;
        }
        var relative = string.Join('/', segments);
        if (relative.Length > MaxLength)
        {
            reason = $"the name is longer than {MaxLength} characters";
            return null;
        }
        return relative;
    }
}
