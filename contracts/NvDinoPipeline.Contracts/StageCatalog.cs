namespace NvDinoPipeline.Contracts;

/// <summary>
/// One stage as every service knows it: the queue its command is sent to, the command, the completion its worker
/// publishes, and the top-level spec section that configures it.
/// </summary>
/// <remarks>A struct, not a record class: it describes messages and is not one itself.</remarks>
public readonly record struct StageEntry(PipelineStage Stage, string Queue, Type Command, Type Completion, string SpecSection);

/// <summary>The pipeline's stages, in the order they run: the one list a new stage is added to.</summary>
public static class StageCatalog
{
    // Queue names are MassTransit's kebab-case names of the commands; they are the wire contract and never change.
    public static IReadOnlyList<StageEntry> All { get; } =
    [
        new(PipelineStage.Staging, "stage-dataset", typeof(StageDataset), typeof(DatasetStaged), "dataset"),
        new(PipelineStage.Training, "train-model", typeof(TrainModel), typeof(TrainingCompleted), "train"),
        new(PipelineStage.Distillation, "distill-model", typeof(DistillModel), typeof(DistillationCompleted), "distill"),
        new(PipelineStage.Export, "export-model", typeof(ExportModel), typeof(ModelExported), "export"),
        new(PipelineStage.EngineGeneration, "generate-engine", typeof(GenerateEngine), typeof(EngineGenerated), "gen_trt_engine"),
        new(PipelineStage.Inference, "run-inference", typeof(RunInference), typeof(InferenceCompleted), "inference"),
        new(PipelineStage.Evaluation, "evaluate-model", typeof(EvaluateModel), typeof(ModelEvaluated), "evaluate"),
    ];

    /// <exception cref="ArgumentOutOfRangeException">The catalog has no such stage.</exception>
    public static StageEntry For(PipelineStage stage) => All.FirstOrDefault(e => e.Stage == stage) is { Queue: not null } entry
        ? entry
        : throw new ArgumentOutOfRangeException(nameof(stage), stage, "The stage catalog has no such stage.");

    /// <summary>The stage whose command is <typeparamref name="TCommand"/>.</summary>
    /// <exception cref="ArgumentException">No stage of the catalog runs that command.</exception>
    public static StageEntry ForCommand<TCommand>() where TCommand : IStageCommand =>
        All.FirstOrDefault(e => e.Command == typeof(TCommand)) is { Queue: not null } entry
            ? entry
            : throw new ArgumentException($"{typeof(TCommand).Name} is the command of no stage in the stage catalog.", nameof(TCommand));
}
