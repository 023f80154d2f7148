using System.Text;
using NvDinoPipeline.Storage.S3;

namespace NvDinoPipeline.Storage;

/// <summary>Parsing and naming rules shared by the backends.</summary>
internal static class ArtifactLocations
{
    public const string FileScheme = "file";
    public const string S3Scheme = "s3";

    private const string PartialSuffix = ".partial";
    private const string Sha256Suffix = ".sha256";

    public static Uri ParseRoot(string? value, string settingName)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new ArgumentException($"{settingName} is empty; give file:///absolute/path/, an absolute path or s3://bucket/prefix/.", settingName);
        }

        Uri uri;
        if (value.StartsWith('/'))
        {
            uri = new Uri(Path.GetFullPath(value));
        }
        else if (!Uri.TryCreate(value, UriKind.Absolute, out uri!))
        {
            throw new ArgumentException($"{settingName} '{value}' is neither an absolute URI nor an absolute path.", settingName);
        }

        if (uri.UserInfo.Length > 0)
        {
            throw new ArgumentException(
                $"{settingName} carries a user name or password; give S3 credentials as {ArtifactStoreOptions.SectionName}:S3:AccessKey and SecretKey.", settingName);
        }

        if (!uri.AbsoluteUri.EndsWith('/'))
        {
            uri = new Uri(uri.AbsoluteUri + "/");
        }

        switch (uri.Scheme)
        {
            case FileScheme:
                _ = ToLocalPath(uri, settingName);
                break;
            case S3Scheme:
                _ = S3Location.Parse(uri, settingName);
                break;
            default:
                throw new ArgumentException($"{settingName} '{value}' has scheme '{uri.Scheme}'; supported are file:// and s3://.", settingName);
        }

        return uri;
    }

    /// <summary>The absolute local path of a <c>file://</c> URI; refuses host names (UNC) and relative forms.</summary>
    public static string ToLocalPath(Uri uri, string paramName)
    {
        if (!uri.IsAbsoluteUri || uri.Scheme != FileScheme)
        {
            throw new ArgumentException($"'{uri}' is not a file:// URI.", paramName);
        }

        if (!string.IsNullOrEmpty(uri.Host) && !uri.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException(
                $"'{uri}' names host '{uri.Host}'; file URIs must be absolute local paths such as file:///var/lib/nvdino/artifacts/ (three slashes).",
                paramName);
        }

        var path = uri.LocalPath;
        if (!Path.IsPathFullyQualified(path))
        {
            throw new ArgumentException($"'{uri}' is not an absolute file path.", paramName);
        }

        return path;
    }

    /// <summary>A <c>file://</c> URI for an absolute path; a trailing separator is kept.</summary>
    public static Uri FromLocalPath(string path)
    {
        var builder = new StringBuilder("file://");
        var segments = path.Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            if (i > 0)
            {
                builder.Append('/');
            }

            builder.Append(Uri.EscapeDataString(segments[i]));
        }

        return new Uri(builder.ToString());
    }

    /// <summary>Escapes each segment of a relative '/'-separated path for use in a URI.</summary>
    public static string EscapePath(string relative) =>
        string.Join('/', relative.Split('/').Select(Uri.EscapeDataString));

    public static bool IsFolder(Uri uri) => uri.AbsolutePath.EndsWith('/');

    public static void RequireObjectUri(Uri uri, string paramName)
    {
        ArgumentNullException.ThrowIfNull(uri, paramName);
        if (!uri.IsAbsoluteUri)
        {
            throw new ArgumentException($"'{uri}' is not an absolute URI; artifacts are addressed as file:///abs/path or s3://bucket/key.", paramName);
        }

        if (IsFolder(uri))
        {
            throw new ArgumentException($"'{uri}' names a folder (it ends with '/'); an object URI is needed.", paramName);
        }

        var name = FileName(uri);
        if (IsReservedName(name))
        {
            throw new ArgumentException(
                $"'{uri}' uses a name reserved for the store's own bookkeeping (a leading '.' with '{PartialSuffix}' or '{Sha256Suffix}').",
                paramName);
        }
    }

    public static string FileName(Uri uri)
    {
        var path = Uri.UnescapeDataString(uri.AbsolutePath);
        return path[(path.LastIndexOf('/') + 1)..];
    }

    /// <summary>Hidden names: in-flight uploads and hash sidecars never show up in listings.</summary>
    public static bool IsReservedName(string name) =>
        name.StartsWith('.') && (name.EndsWith(PartialSuffix, StringComparison.Ordinal) || name.EndsWith(Sha256Suffix, StringComparison.Ordinal));

    public static string PartialName(string name) =>
        $".{(name.Length > 100 ? name[..100] : name)}.{Guid.NewGuid():N}{PartialSuffix}";

    public static string Sha256SidecarName(string name) => $".{name}{Sha256Suffix}";
}
