using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Training.Jobs;

/// <summary>What a training or distillation job checks and opens before its first step.</summary>
public static class JobInputs
{
    /// <summary>
    /// Refuses a device this worker does not have as unavailable here (another worker may have it), naming the setting:
    /// the device of <paramref name="deviceSetting"/>, or the GPUs <c>train.num_gpus</c> and <c>train.gpu_ids</c> ask for.
    /// Several nodes never reach a worker: the spec rules refuse them when the pipeline starts.
    /// <paramref name="work"/> is "train" or "distil", <paramref name="deviceSetting"/> the configuration key of <paramref name="device"/>.
    /// </summary>
    public static void CheckHardware(TrainingSpec spec, string? device, string deviceSetting, string work)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var requested = string.IsNullOrWhiteSpace(device) ? null : device;
        try
        {
            TrainingDevice.Resolve(requested);
        }
        catch (ArgumentException exception)
        {
            throw new StageUnavailableException($"{deviceSetting} is '{device}': {exception.Message}", exception);
        }
        try
        {
            TrainingDevice.ResolveReplicas(spec.Trainer with { Device = requested });
        }
        catch (ArgumentException exception)
        {
            throw new StageUnavailableException($"This worker cannot {work} on the GPUs the spec asks for: {exception.Message}", exception);
        }
    }

    /// <summary>" on N GPUs (cuda:0, cuda:1, …)" for a data-parallel job, for its start message; nothing for one device.</summary>
    public static string DevicesText(IReadOnlyList<TorchSharp.torch.Device> devices)
    {
        ArgumentNullException.ThrowIfNull(devices);
        return devices.Count > 1 ? $" on {devices.Count} devices ({string.Join(", ", devices)})" : "";
    }

    /// <summary>The staged dataset's shards as images (downloaded into <paramref name="scratch"/> when on S3); an empty or unreadable dataset fails the job naming it.</summary>
    public static async Task<ShardImageSource> OpenDatasetAsync(IArtifactStore store, Uri datasetUri, string scratch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        try
        {
            Directory.CreateDirectory(scratch);
            var reader = await ShardReader.OpenAsync(store, datasetUri, scratch, cancellationToken);
            if (reader.Count == 0)
            {
                reader.Dispose();
                throw new StageInputException($"The staged dataset {datasetUri} holds no images.");
            }
            return new ShardImageSource(reader);
        }
        catch (Exception exception) when (exception is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or ArgumentException)
        {
            throw new StageInputException($"The staged dataset {datasetUri} cannot be read: {exception.Message}", exception);
        }
    }

    /// <summary>Steps per epoch over <paramref name="images"/> at <paramref name="batchSize"/> (the last partial batch dropped); a dataset smaller than one batch fails the job.</summary>
    /// <param name="gpus"><c>train.num_gpus</c>: <paramref name="batchSize"/> is the total over them.</param>
    public static long StepsPerEpoch(IImageSource images, Uri datasetUri, int batchSize, int gpus = 1)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count < batchSize)
            throw new StageInputException(gpus > 1
                ? $"dataset.batch_size: {batchSize / gpus} images on each of train.num_gpus {gpus} GPUs make a batch of {batchSize}, larger than the dataset {datasetUri}, " +
                  $"which holds {images.Count} images; lower dataset.batch_size to at most {images.Count / gpus}."
                : $"dataset.batch_size: {batchSize} is larger than the dataset {datasetUri}, which holds {images.Count} images; " +
                  $"lower dataset.batch_size to at most {images.Count}.");
        return images.Count / batchSize;
    }
}
