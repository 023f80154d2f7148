using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.EngineGeneration.TensorRt;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;
using MsOptions = Microsoft.Extensions.Options.Options;

namespace NvDinoPipeline.EngineGeneration.Tests.Support;

/// <summary>
/// A file artifact store in a temp folder holding an exported model (<c>model.onnx</c> + <c>model.json</c>, as the
/// export stage leaves them), optionally a staged dataset, and the engine generation runner over it.
/// </summary>
internal sealed class EngineTestBed : IDisposable
{
    private static readonly Lazy<SpecLoader> Specs = new(SpecLoader.CreateDefault);

    private EngineTestBed(TempDirectory temp, ArtifactStore store)
    {
        Temp = temp;
        Store = store;
        PipelineId = Guid.NewGuid();
        ExportFolder = store.JobFolder(PipelineId, Guid.NewGuid());
    }

    public TempDirectory Temp { get; }

    public ArtifactStore Store { get; }

    public Guid PipelineId { get; }

    public Uri ExportFolder { get; }

    public Uri ModelUri => ExportFolder.Append("model.onnx");

    public Uri MetadataUri => ExportFolder.Append("model.json");

    public Uri? DatasetUri { get; private set; }

    public EngineGenerationOptions Options { get; } = new() { VerificationImages = 12, TrtexecSearchDirectories = [] };

    public ConcurrentQueue<StageProgress> Progress { get; } = new();

    public static async Task<EngineTestBed> CreateAsync(ModelProto? model = null, ModelMetadata? metadata = null)
    {
        var temp = new TempDirectory("nvdino-engine");
        var root = Path.Combine(temp.Path, "artifacts");
        Directory.CreateDirectory(root);
        // Tests keep images and caches of their own in the temp folder, as an operator's data folder.
        var store = new ArtifactStore(MsOptions.Create(new ArtifactStoreOptions { Root = new Uri(root + "/").AbsoluteUri, AllowedReadRoots = [temp.Path] }));
        var bed = new EngineTestBed(temp, store);
        var local = temp.Combine("model.onnx");
        OnnxModelWriter.Save(model ?? TinyVit.Build(), local);
        await store.PutFileAsync(bed.ModelUri, local, CancellationToken.None);
        await bed.PutTextAsync(bed.MetadataUri, (metadata ?? TinyVit.Metadata()).ToJson());
        return bed;
    }

    /// <summary>Stages <paramref name="count"/> generated images as one shard, as the staging worker would.</summary>
    public async Task<Uri> StageImagesAsync(int count, int width = 40, int height = 36, Func<int, byte[]>? image = null)
    {
        var shards = Store.JobFolder(PipelineId, Guid.NewGuid()).Append("shards/");
        var folder = Temp.Combine($"staged-{Guid.NewGuid():N}");
        var images = Enumerable.Range(0, count)
            .Select(i => new DecodedImage(image?.Invoke(i) ?? TestImages.Shapes(width, height, seed: 1000 + i), width, height, channels: 3))
            .ToList();
        await StagedDataset.WriteAsync(folder, new InMemoryImageSource(images), imagesPerShard: Math.Max(1, count));
        var local = Path.Combine(folder, ShardFormat.FileName(0));
        await Store.PutFileAsync(shards.Append(ShardFormat.FileName(0)), local, CancellationToken.None);
        DatasetUri = shards;
        return shards;
    }

    public GenerateEngine Command(params string[] overrides)
    {
        var loader = Specs.Value;
        var spec = loader.Apply(loader.Defaults, overrides);
        var jobId = Guid.NewGuid();
        return new GenerateEngine
        {
            PipelineId = PipelineId,
            JobId = jobId,
            Spec = spec.ToJson(),
            OutputUri = Store.JobFolder(PipelineId, jobId),
            OnnxModelUri = ModelUri,
            ModelMetadataUri = MetadataUri,
            CalibrationDatasetUri = DatasetUri,
        };
    }

    public EngineGenerationRunner Runner() => new(
        Store,
        new TrtexecLocator(MsOptions.Create(Options)),
        MsOptions.Create(Options),
        TimeProvider.System,
        NullLogger<EngineGenerationRunner>.Instance);

    public Task<StageResult<EngineGenerated>> RunAsync(GenerateEngine command, CancellationToken cancellationToken = default)
    {
        var scratch = Temp.Combine("scratch", command.JobId.ToString());
        Directory.CreateDirectory(scratch);
        var context = new StageContext(command, PipelineStage.EngineGeneration, ResolvedSpec.FromJson(command.Spec), command.OutputUri, scratch,
            NullLogger.Instance, (progress, _, _) =>
            {
                Progress.Enqueue(progress);
                return Task.CompletedTask;
            });
        return Runner().RunAsync(command, context, cancellationToken);
    }

    public async Task<string> ReadTextAsync(Uri uri)
    {
        await using var stream = await Store.OpenReadAsync(uri, CancellationToken.None);
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync();
    }

    public async Task PutTextAsync(Uri uri, string text)
    {
        await using var content = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text));
        await Store.PutAsync(uri, content, CancellationToken.None);
    }

    public async Task<EngineManifest> ManifestAsync(Uri jobFolder) =>
        EngineManifest.FromJson(await ReadTextAsync(jobFolder.Append(EngineManifest.FileName)), "engine.json");

    public static string LocalPath(Uri uri) => uri.LocalPath;

    /// <summary>
    /// ONNX Runtime fp32 embeddings of <paramref name="rgbImages"/> (each width×height RGB) with the exported model; a
    /// model exported with a fixed batch of <paramref name="modelBatch"/> gets the images repeated up to that batch.
    /// </summary>
    public float[] ReferenceEmbeddings(IReadOnlyList<byte[]> rgbImages, int width, int height, int modelBatch = -1)
    {
        var preprocessor = new ImagePreprocessor(TinyVit.Metadata().Preprocessing);
        var count = modelBatch > 0 ? modelBatch : rgbImages.Count;
        var input = new float[count * preprocessor.ImageSize];
        for (var i = 0; i < count; i++)
        {
            preprocessor.Preprocess(rgbImages[i % rgbImages.Count], width, height, input.AsSpan(i * preprocessor.ImageSize, preprocessor.ImageSize));
        }

        using var runner = new OnnxModelRunner(LocalPath(ModelUri));
        var output = runner.Run(input, [count, 3, TinyVit.ImageSize, TinyVit.ImageSize]).Single(o => o.Name == "output").Data;
        return output[..(rgbImages.Count * TinyVit.EmbedDim)];
    }

    public void Dispose()
    {
        Store.Dispose();
        Temp.Dispose();
    }
}
