using MassTransit;

namespace NvDinoPipeline.Contracts;

/// <summary>What every stage command and stage event carries: where it belongs in the pipeline.</summary>
[ExcludeFromTopology]
public interface IStageMessage
{
    Guid PipelineId { get; }

    Guid JobId { get; }

    /// <summary>The job whose output this job consumes; null for the first stage.</summary>
    Guid? ParentJobId { get; }
}

/// <summary>A command that asks a stage worker to run one job.</summary>
[ExcludeFromTopology]
public interface IStageCommand : IStageMessage
{
    /// <summary>The pipeline's resolved spec (canonical JSON), stored with the job.</summary>
    string Spec { get; }

    /// <summary>The job's artifact folder: <c>&lt;root&gt;/&lt;pipelineId&gt;/&lt;jobId&gt;/</c>.</summary>
    Uri OutputUri { get; }
}

/// <summary>What a stage worker publishes when its job is done: the outputs the stages after it consume.</summary>
[ExcludeFromTopology]
public interface IStageCompleted : IStageMessage;
