using System.Diagnostics;
using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.Hosting.Observability;

/// <summary>
/// One pipeline is one trace: the orchestrator opens the <c>pipeline</c> span when it accepts a start (a child of the
/// sender's trace when the message carried one) and records its W3C context with the pipeline; every stage job's
/// span, in whichever worker runs it, is a child of that context. Exported over OTLP when
/// <c>Telemetry:OtlpEndpoint</c> is set (<see cref="TelemetryOptions"/>).
/// </summary>
public static class PipelineTracing
{
    public const string SourceName = "NvDinoPipeline";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>The span of accepting pipeline <paramref name="pipelineId"/>; null when nothing listens.</summary>
    public static Activity? StartPipeline(Guid pipelineId, string? name)
    {
        var activity = Source.StartActivity("pipeline", ActivityKind.Server);
        activity?.SetTag("nvdino.pipeline.id", pipelineId.ToString());
        if (name is not null)
            activity?.SetTag("nvdino.pipeline.name", name);
        return activity;
    }

    /// <summary>The W3C <c>traceparent</c> of <paramref name="activity"/>, to store with the pipeline.</summary>
    public static string? TraceParentOf(Activity? activity) => activity?.IdFormat == ActivityIdFormat.W3C ? activity.Id : null;

    /// <summary>
    /// The span of one stage job, a child of the pipeline's <paramref name="traceParent"/> (a trace of its own when the
    /// job has no pipeline, or it predates tracing); null when nothing listens.
    /// </summary>
    public static Activity? StartStage(PipelineStage stage, IStageCommand command, string workerId, string? traceParent)
    {
        ArgumentNullException.ThrowIfNull(command);
        var parent = traceParent is not null && ActivityContext.TryParse(traceParent, null, out var context) ? context : default;
        var activity = Source.StartActivity($"stage {stage}", ActivityKind.Consumer, parent);
        activity?.SetTag("nvdino.pipeline.id", command.PipelineId.ToString());
        activity?.SetTag("nvdino.job.id", command.JobId.ToString());
        activity?.SetTag("nvdino.stage", stage.ToString());
        activity?.SetTag("nvdino.worker.id", workerId);
        return activity;
    }
}

/// <summary>Where traces go (section <c>Telemetry</c>).</summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Telemetry";

    /// <summary>An OTLP collector (<c>http://collector:4317</c>); null records spans for in-process listeners only.</summary>
    public Uri? OtlpEndpoint { get; set; }

    /// <summary><c>grpc</c> (default) or <c>http/protobuf</c>.</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>The service name the spans carry; the process name when empty.</summary>
    public string? ServiceName { get; set; }
}
