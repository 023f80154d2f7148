using System.Collections.Concurrent;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Workers;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>
/// Test doubles for the stage workers: they go through the real job machinery (claim, heartbeat,
/// complete, fail, cancel) but their work is a canned result with made-up artifact URIs.
/// </summary>
public sealed class StandIns
{
    public ConcurrentDictionary<string, int> Runs { get; } = new();

    /// <summary>Called before a stage's result is returned; throw to fail, await to hold the stage.</summary>
    public ConcurrentDictionary<PipelineStage, Func<StageContext, CancellationToken, Task>> Before { get; } = new();

    public async Task RunAsync(PipelineStage stage, string key, StageContext context, CancellationToken cancellationToken)
    {
        Runs.AddOrUpdate(key, 1, (_, n) => n + 1);
        await context.ReportNowAsync(new StageProgress(0.5, $"{stage} half way"), cancellationToken);
        if (Before.TryGetValue(stage, out var before))
        {
            await before(context, cancellationToken);
        }
    }

    public int RunsOf(string key) => Runs.TryGetValue(key, out var n) ? n : 0;
}

public static class StandInRegistration
{
    public static PipelineHostBuilder AddStandInWorkers(this PipelineHostBuilder pipeline, StandIns standIns)
    {
        pipeline.Services.AddSingletonInstance(standIns);
        return pipeline
            .AddStageWorker<StageDataset, DatasetStaged, StagingStandIn>(defaultConcurrentJobs: 2)
            .AddStageWorker<TrainModel, TrainingCompleted, TrainingStandIn>(defaultConcurrentJobs: 1)
            .AddStageWorker<DistillModel, DistillationCompleted, DistillationStandIn>(defaultConcurrentJobs: 1)
            .AddStageWorker<ExportModel, ModelExported, ExportStandIn>(defaultConcurrentJobs: 1)
            .AddStageWorker<GenerateEngine, EngineGenerated, EngineStandIn>(defaultConcurrentJobs: 1)
            .AddStageWorker<RunInference, InferenceCompleted, InferenceStandIn>(defaultConcurrentJobs: 1)
            .AddStageWorker<EvaluateModel, ModelEvaluated, EvaluationStandIn>(defaultConcurrentJobs: 1);
    }

    private static void AddSingletonInstance<T>(this Microsoft.Extensions.DependencyInjection.IServiceCollection services, T instance) where T : class =>
        Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton(services, instance);
}

internal static class Results
{
    public static StageResult<T> Of<T>(T completed, params (string Name, Uri Uri)[] artifacts) where T : class =>
        new(completed, artifacts.ToDictionary(a => a.Name, a => a.Uri), new Dictionary<string, double>());
}

public sealed class StagingStandIn(StandIns standIns) : IStageRunner<StageDataset, DatasetStaged>
{
    public async Task<StageResult<DatasetStaged>> RunAsync(StageDataset command, StageContext context, CancellationToken cancellationToken)
    {
        await standIns.RunAsync(PipelineStage.Staging, $"staging-{command.Role}", context, cancellationToken);
        return Results.Of(new DatasetStaged
        {
            PipelineId = command.PipelineId, JobId = command.JobId, ParentJobId = command.ParentJobId, Role = command.Role,
            ManifestUri = context.Output("manifest.jsonl"), StatisticsUri = context.Output("statistics.json"),
            DatasetUri = context.Output("shards/"), ImageCount = 10, SkippedCount = 0, DuplicateCount = 0,
        }, ("manifest", context.Output("manifest.jsonl")));
    }
}

public sealed class TrainingStandIn(StandIns standIns) : IStageRunner<TrainModel, TrainingCompleted>
{
    public async Task<StageResult<TrainingCompleted>> RunAsync(TrainModel command, StageContext context, CancellationToken cancellationToken)
    {
        await standIns.RunAsync(PipelineStage.Training, "training", context, cancellationToken);
        return Results.Of(new TrainingCompleted
        {
            PipelineId = command.PipelineId, JobId = command.JobId, ParentJobId = command.ParentJobId,
            CheckpointUri = context.Output("checkpoints/last.ckpt"), TeacherBackboneUri = context.Output("teacher_backbone.safetensors"),
            StudentBackboneUri = context.Output("student_backbone.safetensors"), Epochs = 1,
        });
    }
}

public sealed class DistillationStandIn(StandIns standIns) : IStageRunner<DistillModel, DistillationCompleted>
{
    public async Task<StageResult<DistillationCompleted>> RunAsync(DistillModel command, StageContext context, CancellationToken cancellationToken)
    {
        await standIns.RunAsync(PipelineStage.Distillation, "distillation", context, cancellationToken);
        return Results.Of(new DistillationCompleted
        {
            PipelineId = command.PipelineId, JobId = command.JobId, ParentJobId = command.ParentJobId,
            CheckpointUri = context.Output("checkpoints/last.ckpt"), StudentBackboneUri = context.Output("student.safetensors"),
            StudentEmaBackboneUri = context.Output("student_ema.safetensors"),
        });
    }
}

public sealed class ExportStandIn(StandIns standIns) : IStageRunner<ExportModel, ModelExported>
{
    public async Task<StageResult<ModelExported>> RunAsync(ExportModel command, StageContext context, CancellationToken cancellationToken)
    {
        await standIns.RunAsync(PipelineStage.Export, "export", context, cancellationToken);
        return Results.Of(new ModelExported
        {
            PipelineId = command.PipelineId, JobId = command.JobId, ParentJobId = command.ParentJobId,
            OnnxModelUri = context.Output("model.onnx"), MetadataUri = context.Output("model.json"), MaxAbsError = 0, MinCosine = 1,
        });
    }
}

public sealed class EngineStandIn(StandIns standIns) : IStageRunner<GenerateEngine, EngineGenerated>
{
    public async Task<StageResult<EngineGenerated>> RunAsync(GenerateEngine command, StageContext context, CancellationToken cancellationToken)
    {
        await standIns.RunAsync(PipelineStage.EngineGeneration, "engine", context, cancellationToken);
        return Results.Of(new EngineGenerated
        {
            PipelineId = command.PipelineId, JobId = command.JobId, ParentJobId = command.ParentJobId,
            ArtifactUri = context.Output("model.ort.onnx"), Target = "onnxruntime", Precision = "fp32",
            ModelMetadataUri = command.ModelMetadataUri, MinBatchSize = 1, OptBatchSize = 8, MaxBatchSize = 16,
        });
    }
}

public sealed class InferenceStandIn(StandIns standIns) : IStageRunner<RunInference, InferenceCompleted>
{
    public async Task<StageResult<InferenceCompleted>> RunAsync(RunInference command, StageContext context, CancellationToken cancellationToken)
    {
        await standIns.RunAsync(PipelineStage.Inference, "inference", context, cancellationToken);
        return Results.Of(new InferenceCompleted
        {
            PipelineId = command.PipelineId, JobId = command.JobId, ParentJobId = command.ParentJobId,
            CsvUri = context.Output("inference.csv"), EmbeddingsUri = context.Output("embeddings.f32"),
            IndexUri = context.Output("embeddings.index.jsonl"), EmbeddedCount = 10, FailedCount = 0, Dimension = 4,
        });
    }
}

public sealed class EvaluationStandIn(StandIns standIns) : IStageRunner<EvaluateModel, ModelEvaluated>
{
    public async Task<StageResult<ModelEvaluated>> RunAsync(EvaluateModel command, StageContext context, CancellationToken cancellationToken)
    {
        await standIns.RunAsync(PipelineStage.Evaluation, "evaluation", context, cancellationToken);
        return Results.Of(new ModelEvaluated
        {
            PipelineId = command.PipelineId, JobId = command.JobId, ParentJobId = command.ParentJobId,
            EvaluationUri = context.Output("evaluation.json"), Evaluated = true, KnnTop1 = 0.5, LinearProbeTop1 = 0.6,
        });
    }
}
