using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Inference.Tests.Support;

/// <summary>
/// The inference runner with a real file artifact store and MassTransit's test harness as the results
/// exchange (it records every published batch), driven the way the stage consumer drives it.
/// </summary>
public sealed class RunnerBed : IAsyncDisposable
{
    private readonly ServiceProvider _provider;

    private RunnerBed(TempDirectory folder, ServiceProvider provider)
    {
        Folder = folder;
        _provider = provider;
    }

    public TempDirectory Folder { get; }

    public IArtifactStore Store => _provider.GetRequiredService<IArtifactStore>();

    public ITestHarness Harness => _provider.GetRequiredService<ITestHarness>();

    public List<StageProgress> Progress { get; } = [];

    /// <param name="readableFolder">Another folder the store may read (a model and images another bed made).</param>
    public static async Task<RunnerBed> StartAsync(Action<InferenceOptions>? configure = null, string? readableFolder = null)
    {
        var folder = new TempDirectory("nvdino-inference");
        var settings = new Dictionary<string, string?>
        {
            ["ArtifactStore:Root"] = new Uri(folder.Combine("artifacts") + "/").AbsoluteUri,
            ["ArtifactStore:AllowedReadRoots:0"] = folder.Path,
        };
        if (readableFolder is not null)
        {
            settings["ArtifactStore:AllowedReadRoots:1"] = readableFolder;
        }
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddArtifactStore(configuration);
        services.AddSingleton(Options.Create(Configure(configure)));
        services.AddSingleton<IInferenceHardware, NativeInferenceHardware>();
        services.AddSingleton<DeployedModelLoader>();
        services.AddScoped<InferenceRunner>();
        services.AddMassTransitTestHarness();
        var provider = services.BuildServiceProvider(validateScopes: true);
        await provider.GetRequiredService<ITestHarness>().Start();
        return new RunnerBed(folder, provider);
    }

    public static InferenceOptions Configure(Action<InferenceOptions>? configure)
    {
        var options = new InferenceOptions { PreprocessParallelism = 2 };
        configure?.Invoke(options);
        return options;
    }

    public RunInference Command(TinyVit model, string datasetUri, Guid? jobId = null, string target = DeployedModelReference.OnnxRuntimeTarget,
        params string[] overrides)
    {
        var pipelineId = NewId.NextGuid();
        var job = jobId ?? NewId.NextGuid();
        return new RunInference
        {
            PipelineId = pipelineId,
            JobId = job,
            Spec = SpecLoader.CreateDefault().Resolve([], overrides).ToJson(),
            OutputUri = Store.JobFolder(pipelineId, job),
            DeployArtifactUri = model.ModelUri,
            Target = target,
            ModelMetadataUri = model.MetadataUri,
            DatasetUri = new Uri(datasetUri),
            ManifestUri = new Uri(new Uri(datasetUri), "../manifest.jsonl"),
        };
    }

    public async Task<StageResult<InferenceCompleted>> RunAsync(RunInference command, CancellationToken cancellationToken = default)
    {
        await using var scope = _provider.CreateAsyncScope();
        var runner = scope.ServiceProvider.GetRequiredService<InferenceRunner>();
        var scratch = Folder.Combine("scratch", command.JobId.ToString());
        Directory.CreateDirectory(scratch);
        var context = new StageContext(command, PipelineStage.Inference, ResolvedSpec.FromJson(command.Spec), command.OutputUri, scratch,
            NullLogger.Instance, (progress, _, _) =>
            {
                lock (Progress)
                {
                    Progress.Add(progress);
                }
                return Task.CompletedTask;
            });
        return await runner.RunAsync(command, context, cancellationToken);
    }

    /// <summary>Every batch published for <paramref name="jobId"/>, in the order the harness saw them.</summary>
    public List<EmbeddingsBatch> Published(Guid jobId) =>
        Harness.Published.Select<EmbeddingsBatch>().Select(m => m.Context.Message).Where(b => b.JobId == jobId).ToList();

    public async ValueTask DisposeAsync()
    {
        await Harness.Stop();
        await _provider.DisposeAsync();
        Folder.Dispose();
    }
}
