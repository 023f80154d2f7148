using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.Export.Checkpoints;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Export.Tests.Support;

/// <summary>
/// A file artifact store in a temp folder holding a finished training job (its backbone files and checkpoints),
/// and the export runner over that store with a stage context that records progress.
/// </summary>
internal sealed class ExportTestBed : IDisposable
{
    private static readonly Lazy<SpecLoader> Specs = new(SpecLoader.CreateDefault);

    public ExportTestBed()
    {
        Temp = new TempDirectory("nvdino-export");
        var root = Temp.Combine("artifacts");
        Directory.CreateDirectory(root);
        Store = new ArtifactStore(Microsoft.Extensions.Options.Options.Create(new ArtifactStoreOptions { Root = new Uri(root + "/").AbsoluteUri, AllowedReadRoots = [Temp.Path] }));
        SourceFolder = Store.JobFolder(PipelineId, SourceJobId);
    }

    public TempDirectory Temp { get; }

    public ArtifactStore Store { get; }

    public Guid PipelineId { get; } = Guid.NewGuid();

    public Guid SourceJobId { get; } = Guid.NewGuid();

    /// <summary>The training (or distillation) job's artifact folder.</summary>
    public Uri SourceFolder { get; }

    public Uri BackboneUri => SourceFolder.Append("teacher_backbone.safetensors");

    public ExportOptions Options { get; } = new() { OnnxRuntimeThreads = 1 };

    public ConcurrentQueue<StageProgress> Progress { get; } = new();

    /// <summary>The export keys and the backbone of <paramref name="config"/> set in a full spec, validated like a user's.</summary>
    public static ResolvedSpec Spec(BackboneConfig config, params string[] overrides)
    {
        var name = BackboneLoader.NameOf(config);
        var ffn = config.FfnLayer == FfnLayer.SwiGlu ? "swiglu" : "mlp";
        string[] backbone =
        [
            $"model.backbone.teacher_type={name}",
            $"model.backbone.student_type={name}",
            $"model.backbone.patch_size={config.PatchSize}",
            $"model.backbone.img_size={config.ImgSize}",
            $"model.backbone.ffn_layer={ffn}",
            $"model.backbone.num_register_tokens={config.NumRegisterTokens}",
            $"model.backbone.layerscale_init={(config.LayerScaleInit is null ? "null" : "1.0e-5")}",
            // Crop sides must be multiples of the patch size too.
            $"dataset.transform.global_crops_size={config.PatchSize * 16}",
            $"dataset.transform.local_crops_size={config.PatchSize * 7}",
            $"export.input_height={config.ImgSize}",
            $"export.input_width={config.ImgSize}",
        ];
        return Specs.Value.Resolve([], [.. backbone, .. overrides]);
    }

    /// <summary>Saves <paramref name="model"/> with <see cref="BackboneWeights.Save"/> and stores it at <paramref name="uri"/> as training does.</summary>
    public async Task<Uri> StoreBackboneAsync(VisionTransformer model, Uri? uri = null)
    {
        uri ??= BackboneUri;
        var local = Temp.Combine($"upload-{Guid.NewGuid():N}.safetensors");
        BackboneWeights.Save(model, local);
        await Store.PutFileAsync(uri, local, CancellationToken.None);
        File.Delete(local);
        return uri;
    }

    public ExportModel Command(ResolvedSpec spec, PipelineStage source = PipelineStage.Training, Uri? backbone = null, Uri? validationDataset = null) =>
        Command(spec.ToJson(), source, backbone, validationDataset);

    public ExportModel Command(string spec, PipelineStage source = PipelineStage.Training, Uri? backbone = null, Uri? validationDataset = null)
    {
        var jobId = Guid.NewGuid();
        return new ExportModel
        {
            PipelineId = PipelineId,
            JobId = jobId,
            ParentJobId = SourceJobId,
            Spec = spec,
            OutputUri = Store.JobFolder(PipelineId, jobId),
            SourceStage = source,
            CheckpointsUri = SourceFolder,
            BackboneUri = backbone ?? BackboneUri,
            ValidationDatasetUri = validationDataset,
        };
    }

    public Task<StageResult<ModelExported>> RunAsync(ExportModel command, CancellationToken cancellationToken = default)
    {
        var scratch = Temp.Combine("scratch", command.JobId.ToString());
        Directory.CreateDirectory(scratch);
        var context = new StageContext(command, PipelineStage.Export, ResolvedSpec.FromJson(command.Spec), command.OutputUri, scratch,
            NullLogger.Instance, (progress, _, _) =>
            {
                Progress.Enqueue(progress);
                return Task.CompletedTask;
            });
        var runner = new ExportRunner(Store, Microsoft.Extensions.Options.Options.Create(Options), NullLogger<ExportRunner>.Instance);
        return runner.RunAsync(command, context, cancellationToken);
    }

    public Task<StageInputException> FailsAsync(ExportModel command) => Assert.ThrowsAsync<StageInputException>(() => RunAsync(command));

    public static string LocalPath(Uri uri) => uri.LocalPath;

    public static ModelMetadata Metadata(ModelExported exported) =>
        ModelMetadata.FromJson(File.ReadAllText(exported.MetadataUri.LocalPath), exported.MetadataUri.AbsoluteUri);

    /// <summary>Every object in the store under <paramref name="folder"/>, as paths relative to it.</summary>
    public async Task<List<string>> ListAsync(Uri folder)
    {
        var names = new List<string>();
        await foreach (var item in Store.ListAsync(folder, CancellationToken.None))
        {
            names.Add(item.Uri.AbsoluteUri[folder.AbsoluteUri.Length..]);
        }
        return names;
    }

    public void Dispose()
    {
        Store.Dispose();
        Temp.Dispose();
    }
}
