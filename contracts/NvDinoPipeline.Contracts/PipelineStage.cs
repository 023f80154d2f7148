using System.Text.Json.Serialization;

namespace NvDinoPipeline.Contracts;

// Enums travel as their names ("stage": "Training"); numbers, as older messages carry them, are still read.

/// <summary>The stages of a pipeline, in the order they run.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<PipelineStage>))]
public enum PipelineStage
{
    Staging,
    Training,
    Distillation,
    Export,
    EngineGeneration,
    Inference,
    Evaluation,
}

/// <summary>Job statuses, named as TAO names them.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<JobStatus>))]
public enum JobStatus
{
    Pending,
    Running,
    Done,
    Error,
    Canceled,
}

/// <summary>Which of the pipeline's two datasets a staging job prepares.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DatasetRole>))]
public enum DatasetRole
{
    Train,
    Test,
}
