using NvDinoPipeline.Deployment;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using StbImageSharp;

namespace NvDinoPipeline.EngineGeneration.Images;

/// <summary>One decoded image: interleaved 8-bit RGB, row by row.</summary>
public sealed record SourceImage(byte[] Rgb, int Width, int Height, string Path);

/// <summary>Images addressed by index, for calibration and verification.</summary>
public interface IImageSource : IDisposable
{
    int Count { get; }

    /// <summary>Where the images come from, for reports.</summary>
    string Description { get; }

    SourceImage Read(int index);
}

/// <summary>A staged dataset's shards.</summary>
public sealed class ShardImageSource(ShardReader reader, string description) : IImageSource
{
    public int Count => reader.Count;

    public string Description => description;

    public SourceImage Read(int index)
    {
        var image = reader.Read(index);
        return new SourceImage(image.Rgb, image.Width, image.Height, image.RelativePath);
    }

    public void Dispose() => reader.Dispose();
}

/// <summary>Image files (PNG, JPEG, BMP, TGA, GIF, PSD, HDR) decoded on demand.</summary>
public sealed class FileImageSource(IReadOnlyList<string> files, string description) : IImageSource
{
    public static readonly IReadOnlySet<string> Extensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".bmp", ".tga", ".gif", ".psd", ".hdr",
    };

    public int Count => files.Count;

    public string Description => description;

    public SourceImage Read(int index)
    {
        var file = files[index];
        try
        {
            using var stream = File.OpenRead(file);
            var image = ImageResult.FromStream(stream, ColorComponents.RedGreenBlue);
            return new SourceImage(image.Data, image.Width, image.Height, file);
        }
        catch (Exception exception) when (exception is InvalidOperationException or IOException or ArgumentException)
        {
            throw new StageInputException($"Calibration image '{file}' cannot be decoded: {exception.Message}", exception);
        }
    }

    public void Dispose()
    {
    }
}

/// <summary>Several sources read as one, in order.</summary>
public sealed class CombinedImageSource(IReadOnlyList<IImageSource> sources) : IImageSource
{
    public int Count => sources.Sum(s => s.Count);

    public string Description => string.Join(", ", sources.Select(s => s.Description));

    public SourceImage Read(int index)
    {
        foreach (var source in sources)
        {
            if (index < source.Count)
            {
                return source.Read(index);
            }

            index -= source.Count;
        }

        throw new ArgumentOutOfRangeException(nameof(index));
    }

    public void Dispose()
    {
        foreach (var source in sources)
        {
            source.Dispose();
        }
    }
}

/// <summary>
/// Deterministic smooth colour patterns with mild noise, for checking an fp32/fp16 build when a job has no images.
/// Never used for calibration: ranges measured on them would not describe real images.
/// </summary>
public sealed class SyntheticImageSource(int count, int width, int height, int seed = 17) : IImageSource
{
    public int Count => count;

    public string Description => $"{count} generated {width}x{height} images";

    public SourceImage Read(int index)
    {
        var random = new Random(seed + index);
        var rgb = new byte[width * height * 3];
        var (fx, fy, phase) = (random.NextDouble() * 0.3, random.NextDouble() * 0.3, random.NextDouble() * 6);
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    var value = 127.5 + 100 * Math.Sin(fx * x + fy * y + phase + 2 * c) + 20 * (random.NextDouble() - 0.5);
                    rgb[(y * width + x) * 3 + c] = (byte)Math.Clamp(value, 0, 255);
                }
            }
        }

        return new SourceImage(rgb, width, height, $"synthetic-{index}");
    }

    public void Dispose()
    {
    }
}

public static class ImageSources
{
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
        var folder = EngineLocations.FolderUri(directory, "gen_trt_engine.tensorrt.calibration.cal_image_dir");
        var objects = new List<Uri>();
        await foreach (var item in store.ListAsync(folder, cancellationToken))
        {
            objects.Add(item.Uri);
        }

        var names = objects.Select(u => Uri.UnescapeDataString(u.AbsolutePath[(u.AbsolutePath.LastIndexOf('/') + 1)..])).ToList();
        if (names.Any(n => n == "dataset.json" || (n.StartsWith("shard-", StringComparison.Ordinal) && n.EndsWith(".bin", StringComparison.Ordinal))))
        {
            try
            {
                var reader = await ShardReader.OpenAsync(store, folder, Path.Combine(scratchDirectory, "calibration-images"), cancellationToken);
                return new ShardImageSource(reader, $"staged shards {folder}");
            }
            catch (InvalidDataException exception)
            {
                throw new StageInputException($"gen_trt_engine.tensorrt.calibration.cal_image_dir '{directory}' holds shards that cannot be read: {exception.Message}", exception);
            }
        }

        var images = objects.Where(u => FileImageSource.Extensions.Contains(Path.GetExtension(u.AbsolutePath)))
            .OrderBy(u => u.AbsoluteUri, StringComparer.Ordinal)
            .ToList();
        if (images.Count == 0)
        {
            throw new StageInputException(
                $"gen_trt_engine.tensorrt.calibration.cal_image_dir '{directory}' holds no images ({string.Join(", ", FileImageSource.Extensions)}) and no staged shards.");
        }

        var files = new List<string>(images.Count);
        foreach (var image in images)
        {
            files.Add(await store.GetLocalPathAsync(image, Path.Combine(scratchDirectory, "calibration-images"), cancellationToken));
        }

        return new FileImageSource(files, $"{files.Count} image files in {folder}");
    }

    /// <summary>Pre-processes the images at <paramref name="indices"/> into one [N,3,H,W] batch.</summary>
    public static float[] Batch(IImageSource source, IReadOnlyList<int> indices, ImagePreprocessor preprocessor)
    {
        var size = preprocessor.ImageSize;
        var batch = new float[indices.Count * size];
        Parallel.For(0, indices.Count, i =>
        {
            var image = source.Read(indices[i]);
            preprocessor.Preprocess(image.Rgb, image.Width, image.Height, batch.AsSpan(i * size, size));
        });
        return batch;
    }
}
