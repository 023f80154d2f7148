using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Inference.Pipeline;

public static class InputImages
{
    /// <summary>The limits an input is decoded within, named by the settings that set them.</summary>
    public static ImageLimits Limits(InferenceOptions options) =>
        ImageLimits.Pixels(options.MaxImagePixels, $"{InferenceOptions.SectionName}:{nameof(InferenceOptions.MaxImagePixels)}");

    /// <summary>
    /// Opens the inputs at <paramref name="datasetUri"/>: a staging job's shards folder (<c>dataset.json</c> or
    /// <c>shard-*.bin</c>), or else a folder of image files (JPEG, PNG, …, searched recursively).
    /// </summary>
    /// <exception cref="StageInputException">The folder holds neither, or its shards are unreadable.</exception>
    public static async Task<IImageSource> OpenAsync(IArtifactStore store, Uri datasetUri, string scratchDirectory,
        InferenceOptions options, CancellationToken cancellationToken)
    {
        var folder = await ImageFolder.ListAsync(store, datasetUri, cancellationToken);
        if (folder.IsShards)
        {
            try
            {
                return new ShardImageSource(await ShardReader.OpenAsync(store, folder.Uri, scratchDirectory, cancellationToken));
            }
            catch (InvalidDataException exception)
            {
                throw new StageInputException($"The staged dataset {folder.Uri} cannot be read: {exception.Message}", exception);
            }
        }
        if (folder.Files.Count == 0)
        {
            throw new StageInputException(folder.NothingFound);
        }
        return new ImageFileSource(store, folder.Files, options.MaxImageBytes, Limits(options));
    }
}
