namespace NvDinoPipeline.Contracts;

/// <summary>The stages of a pipeline, in the order they run.</summary>
public enum PipelineStage
{
    Staging,
    Training,
    Distillation,
    Export,
    EngineGeneration,
    Inference,
}

/// <summary>Job statuses, named as TAO names them.</summary>
public enum JobStatus
{
    Pending,
    Running,
    Done,
    Error,
    Canceled,
}

/// <summary>Which of the pipeline's two datasets a staging job prepares.</summary>
public enum DatasetRole
{
    Train,
    Test,
}
