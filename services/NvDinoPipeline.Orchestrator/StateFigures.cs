using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Hosting.Observability;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator;

/// <summary>Puts the state database's pipelines and jobs on the orchestrator's <c>/metrics</c>, counted at each scrape.</summary>
internal sealed class StateFigures(PipelineMetrics metrics, PipelineStore pipelines) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        metrics.ObserveState(pipelines.CountAsync);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
