using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.Hosting.Messaging;

/// <summary>
/// Commands are sent to named queues rather than published, so a command waits in its queue until
/// a worker for that stage exists.
/// </summary>
public static class Queues
{
    public const string Orchestrator = "pipeline-orchestrator";
    public const string StageDataset = "stage-dataset";
    public const string TrainModel = "train-model";
    public const string DistillModel = "distill-model";
    public const string ExportModel = "export-model";
    public const string GenerateEngine = "generate-engine";
    public const string RunInference = "run-inference";
    public const string EmbedImages = "embed-images";

    public static Uri Address(string queue) => new($"queue:{queue}");

    public static string ForStage(PipelineStage stage) => stage switch
    {
        PipelineStage.Staging => StageDataset,
        PipelineStage.Training => TrainModel,
        PipelineStage.Distillation => DistillModel,
        PipelineStage.Export => ExportModel,
        PipelineStage.EngineGeneration => GenerateEngine,
        PipelineStage.Inference => RunInference,
        _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, "Unknown stage."),
    };
}
