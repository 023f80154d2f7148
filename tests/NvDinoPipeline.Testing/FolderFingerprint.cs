using System.Security.Cryptography;

namespace NvDinoPipeline.Testing;

/// <summary>
/// The SHA-256 of every file under a folder, hidden ones (hash sidecars) included, by relative path: taken before and
/// after something hostile ran, two fingerprints are equal only if nothing there was added, removed or changed.
/// </summary>
public static class FolderFingerprint
{
    public static SortedDictionary<string, string> Of(string folder)
    {
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (!Directory.Exists(folder))
        {
            return files;
        }
        foreach (var file in Directory.EnumerateFiles(folder, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var info = new FileInfo(file);
            files[Path.GetRelativePath(folder, file)] = info.LinkTarget is { } target
                ? $"link -> {target}"
                : Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));
        }
        return files;
    }
}
