using System.Text.RegularExpressions;

namespace NvDinoPipeline.Specs;

/// <summary>What a key naming a file or folder holds: something a stage reads, or something it writes.</summary>
internal enum LocationRole
{
    None,

    /// <summary>Read: an absolute path, a file:// or s3:// URI, or a name relative to a folder the stage knows.</summary>
    Input,

    /// <summary>Written: a path relative to the job's own folder, nothing else.</summary>
    Output,
}

/// <summary>
/// The form a location may take in a spec. Whether an input lies under the roots this deployment reads is checked
/// where the roots are known (the command-line client before sending, the artifact store always); here every form
/// that could climb or smuggle its way elsewhere is refused.
/// </summary>
internal static partial class SpecLocations
{
    [GeneratedRegex(@"(?<=://)[^/@\s]*@")]
    private static partial Regex UserInfo();

    /// <summary>Text with any <c>user:password@</c> of a URI replaced by <c>***@</c>.</summary>
    public static string Redact(string text) => UserInfo().Replace(text, "***@");

    /// <summary>Why <paramref name="text"/> is no valid location for <paramref name="role"/>, or null.</summary>
    public static string? Problem(string text, LocationRole role)
    {
        var shown = $"'{Redact(text)}'";
        if (text.Any(char.IsControl))
        {
            return $"{shown} holds a control character";
        }

        var scheme = text.IndexOf("://", StringComparison.Ordinal);
        if (role == LocationRole.Output && (text.StartsWith('/') || text.StartsWith('\\') || scheme >= 0))
        {
            return $"{shown} is outside the job's folder: a stage writes only under its own job folder in the artifact store, "
                + "so give a path relative to it such as 'model.onnx'";
        }

        var path = text;
        if (scheme >= 0)
        {
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
            {
                return $"{shown} is not a valid URI";
            }
            if (uri.UserInfo.Length > 0)
            {
                return $"{shown} carries a user name or password; give credentials in the ArtifactStore:S3 settings, never in a location";
            }
            if (uri.Scheme is not ("file" or "s3"))
            {
                return $"{shown} has scheme '{uri.Scheme}'; give an absolute path, a file:// or an s3:// location";
            }
            var rest = text[(scheme + 3)..];
            path = rest.Contains('/') ? rest[rest.IndexOf('/')..] : "";
            if (path.IndexOfAny(['?', '#']) >= 0)
            {
                return $"{shown} has a query or fragment; escape '?' and '#' in names as %3F and %23";
            }
        }

        if (HasDotSegment(path) || HasDotSegment(Unescaped(path)))
        {
            return $"{shown} has a '.' or '..' segment (perhaps written %2e%2e); name the file directly";
        }
        if (role == LocationRole.Output && path.Split('/').Any(segment => segment.Length == 0))
        {
            return $"{shown} has an empty segment ('//' or a trailing '/'); name a file inside the job's folder";
        }
        return null;
    }

    private static bool HasDotSegment(string path) => path.Split('/', '\\').Any(segment => segment is "." or "..");

    private static string Unescaped(string path)
    {
        try
        {
            return Uri.UnescapeDataString(path);
        }
        catch (UriFormatException)
        {
            return path;
        }
    }
}
