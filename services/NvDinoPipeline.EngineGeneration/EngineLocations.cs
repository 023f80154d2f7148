using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>Spec values naming files: absolute local paths, <c>file://</c> or <c>s3://</c> URIs, or names relative to a folder.</summary>
internal static class EngineLocations
{
    public static Uri FolderUri(string value, string key)
    {
        var uri = ObjectUri(value, relativeTo: null, key);
        return uri.AsFolder();
    }

    /// <summary>The URI a spec value names; a relative value is resolved against <paramref name="relativeTo"/> (a folder URI) when given.</summary>
    public static Uri ObjectUri(string value, Uri? relativeTo, string key)
    {
        if (Path.IsPathFullyQualified(value))
        {
            return new Uri(Path.GetFullPath(value));
        }

        if (Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "file" or "s3")
        {
            return uri;
        }

        if (relativeTo is not null && !value.Contains("://", StringComparison.Ordinal))
        {
            try
            {
                return relativeTo.Append(value);
            }
            catch (ArgumentException exception)
            {
                throw new StageInputException($"{key} '{value}' is not a usable relative path: {exception.Message}", exception);
            }
        }

        throw new StageInputException(
            $"{key} '{value}' must be an absolute path or a file:// or s3:// URI{(relativeTo is null ? "" : $", or a path relative to {relativeTo}")}.");
    }

    /// <summary>The folder part of an object URI (ending with '/').</summary>
    public static Uri FolderOf(Uri objectUri) => new(objectUri, ".");
}
