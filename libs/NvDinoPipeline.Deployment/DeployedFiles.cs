using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Deployment;

/// <summary>Reading a deployed model's files from the artifact store, as engine generation, inference and evaluation do.</summary>
public static class DeployedFiles
{
    /// <summary>The model metadata file at <paramref name="metadataUri"/>.</summary>
    /// <exception cref="InvalidDataException">It does not exist or is not model metadata; the message names it.</exception>
    public static async Task<ModelMetadata> ReadMetadataAsync(this IArtifactStore store, Uri metadataUri, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        string json;
        try
        {
            await using var stream = await store.OpenReadAsync(metadataUri, cancellationToken);
            using var reader = new StreamReader(stream);
            json = await reader.ReadToEndAsync(cancellationToken);
        }
        catch (ArtifactNotFoundException exception)
        {
            throw new InvalidDataException($"Model metadata {metadataUri} does not exist.", exception);
        }
        return ModelMetadata.FromJson(json, metadataUri.ToString());
    }

    /// <summary>
    /// The model (ONNX or a TensorRT context model) at <paramref name="modelUri"/> as a local file below
    /// <paramref name="folder"/>, with its external weights (<c>&lt;model&gt;.data</c>) beside it when it has them.
    /// </summary>
    /// <exception cref="InvalidDataException">The model does not exist, or its weights did not land beside it.</exception>
    public static async Task<string> FetchModelAsync(this IArtifactStore store, Uri modelUri, string folder, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        string path;
        try
        {
            path = await store.GetLocalPathAsync(modelUri, folder, cancellationToken);
        }
        catch (ArtifactNotFoundException exception)
        {
            throw new InvalidDataException($"Model {modelUri} does not exist.", exception);
        }
        var data = new Uri(modelUri.AbsoluteUri + ".data");
        if (await store.GetInfoAsync(data, cancellationToken) is not null)
        {
            var dataPath = await store.GetLocalPathAsync(data, folder, cancellationToken);
            if (dataPath != path + ".data")
                throw new InvalidDataException($"Model {modelUri} and its external data {data} were not fetched side by side ('{path}', '{dataPath}').");
        }
        return path;
    }
}
