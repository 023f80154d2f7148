using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Hosting.Workers;

/// <summary>Files a spec names (a pretrained model, a labels CSV) as local paths, read through the deployment's store.</summary>
public static class SpecFiles
{
    /// <summary>
    /// A local file for the path or URI <paramref name="value"/> named by the spec key <paramref name="key"/>; objects
    /// are downloaded below <paramref name="downloadFolder"/>. Reading through the store holds the read to the roots
    /// this deployment allows.
    /// </summary>
    /// <exception cref="StageInputException">The value names no file, or the file is missing or refused.</exception>
    public static async Task<string> LocalPathAsync(this IArtifactStore store, string value, string key, string downloadFolder,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        try
        {
            if (!ArtifactUriExtensions.TryParseLocation(value, out var uri) && !ArtifactUriExtensions.TryParseLocation(Path.GetFullPath(value), out uri))
                throw new ArgumentException($"'{value}' names no file");
            return await store.GetLocalPathAsync(uri, downloadFolder, cancellationToken);
        }
        catch (Exception exception) when (exception is FileNotFoundException or ArgumentException or ArtifactStoreException { Transient: false })
        {
            throw new StageInputException($"{key}: '{value}' cannot be read: {exception.Message}", exception);
        }
    }
}
