using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>The images an engine is calibrated and verified on.</summary>
public static class CalibrationImages
{
    private const string ImageDirectorySetting = "gen_trt_engine.tensorrt.calibration.cal_image_dir";

    /// <summary>The largest calibration image file read, and the largest it may decode to (as inference's defaults).</summary>
    public const long MaxImageBytes = 256L * 1024 * 1024;

    public const long MaxImagePixels = 100_000_000;

    private static readonly ImageLimits Limits = ImageLimits.Pixels(MaxImagePixels, "the calibration image limit");

    /// <summary>
    /// The images of a job: the spec's <c>cal_image_dir</c> folders when given (each a staged shards folder or a
    /// folder of image files; local paths, <c>file://</c> or <c>s3://</c>), else the staged dataset the command
    /// names. Null when there are none.
    /// </summary>
    public static async Task<IImageSource?> OpenAsync(IArtifactStore store, IReadOnlyList<string> imageDirectories, Uri? datasetUri,
        string scratchDirectory, CancellationToken cancellationToken)
    {
        if (imageDirectories.Count > 0)
        {
            var sources = new List<IImageSource>();
            try
            {
                foreach (var directory in imageDirectories)
                {
                    sources.Add(await OpenFolderAsync(store, directory, scratchDirectory, cancellationToken));
                }

                return sources.Count == 1 ? sources[0] : new CombinedImageSource(sources);
            }
            catch
            {
                sources.ForEach(s => s.Dispose());
                throw;
            }
        }

        if (datasetUri is null)
        {
            return null;
        }

        try
        {
            var reader = await ShardReader.OpenAsync(store, datasetUri, Path.Combine(scratchDirectory, "dataset"), cancellationToken);
            return new ShardImageSource(reader, $"staged dataset {datasetUri}");
        }
        catch (Exception exception) when (exception is InvalidDataException or ArtifactNotFoundException or DirectoryNotFoundException)
        {
            throw new StageInputException($"The staged dataset {datasetUri} cannot be read: {exception.Message}", exception);
        }
    }

    private static async Task<IImageSource> OpenFolderAsync(IArtifactStore store, string directory, string scratchDirectory, CancellationToken cancellationToken)
    {
        var folder = await ImageFolder.ListAsync(store, EngineLocations.FolderUri(directory, ImageDirectorySetting), cancellationToken);
        if (folder.IsShards)
        {
            try
            {
                var reader = await ShardReader.OpenAsync(store, folder.Uri, Path.Combine(scratchDirectory, "calibration-images"), cancellationToken);
                return new ShardImageSource(reader, $"staged shards {folder.Uri}");
            }
            catch (InvalidDataException exception)
            {
                throw new StageInputException($"{ImageDirectorySetting} '{directory}' holds shards that cannot be read: {exception.Message}", exception);
            }
        }

        if (folder.Files.Count == 0)
        {
            throw new StageInputException(
                $"{ImageDirectorySetting} '{directory}' holds no images ({string.Join(", ", ImageFolder.Extensions)}) and no staged shards.");
        }

        // Downloaded once (a verified copy is reused): calibration and verification read the same images again.
        var files = new List<ImageFileEntry>(folder.Files.Count);
        foreach (var image in folder.Files)
        {
            var local = await store.GetLocalPathAsync(image.Uri, Path.Combine(scratchDirectory, "calibration-images"), cancellationToken);
            files.Add(image with { Uri = new Uri(local) });
        }

        return new ImageFileSource(store, files, MaxImageBytes, Limits, $"{files.Count} image files in {folder.Uri}");
    }

    /// <summary>Pre-processes the images at <paramref name="indices"/> into one [N,3,H,W] batch.</summary>
    /// <exception cref="StageInputException">A calibration image cannot be decoded; the message names it.</exception>
    public static float[] Batch(IImageSource source, IReadOnlyList<int> indices, ImagePreprocessor preprocessor)
    {
        var size = preprocessor.ImageSize;
        var batch = new float[indices.Count * size];
        Parallel.For(0, indices.Count, i =>
        {
            DecodedImage image;
            try
            {
                image = source.Read(indices[i]);
            }
            catch (UnreadableImageException exception)
            {
                throw new StageInputException($"Calibration image '{exception.Path}' cannot be decoded: {exception.Reason}", exception);
            }

            preprocessor.Preprocess(image.Pixels, image.Width, image.Height, batch.AsSpan(i * size, size));
        });
        return batch;
    }
}
