using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Hosting.Observability;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Hosting.Workers;

/// <summary>Records this process and the stages it serves, so status can say when a stage has no worker.</summary>
public sealed class WorkerHeartbeatService(
    WorkerStore workers,
    WorkerIdentity worker,
    ServedStages served,
    HostEndpoint endpoint,
    IOptions<WorkerOptions> options,
    PipelineMetrics metrics,
    TimeProvider clock,
    ILogger<WorkerHeartbeatService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (served.Names.Count == 0)
        {
            return;
        }
        var stages = string.Join(',', served.Names);
        var gpus = CountGpus();
        using var timer = new PeriodicTimer(options.Value.HeartbeatInterval);
        do
        {
            try
            {
                await workers.HeartbeatAsync(worker.Id, stages, worker.HostName, stoppingToken, endpoint.Url, gpus);
                metrics.HeartbeatRecorded(clock.GetUtcNow());
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                logger.LogWarning(exception, "Worker heartbeat failed; retrying at the next beat");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>The GPUs this process offers its training stages, logged once; 0 when it cannot tell.</summary>
    private int CountGpus()
    {
        if (served.GpuCounters.Count == 0)
        {
            return 0;
        }
        try
        {
            var gpus = served.GpuCounters.Max(count => count());
            logger.LogInformation("This worker offers {Gpus} CUDA device(s) to {Stages}", gpus, string.Join(", ", served.Names));
            return gpus;
        }
        catch (Exception exception)
        {
            logger.LogWarning(exception, "Could not count the CUDA devices; this worker offers none");
            return 0;
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (served.Names.Count > 0)
        {
            try
            {
                await workers.RemoveAsync(worker.Id, cancellationToken);
            }
            catch (Exception exception)
            {
                logger.LogDebug(exception, "Could not remove the worker record on shutdown");
            }
        }
    }
}

/// <summary>
/// Where this process's HTTP API answers, once it listens (the heartbeats record it, so that clients find it; the first
/// beats may come before it listens); null when it serves none.
/// </summary>
public sealed class HostEndpoint
{
    public string? Url { get; set; }
}

/// <summary>The stages (and other roles, like the orchestrator) this process serves.</summary>
public sealed class ServedStages
{
    /// <summary>The name the orchestrator's heartbeat carries: a live orchestrator is one that beats with it.</summary>
    public const string Orchestrator = "Orchestrator";

    public List<string> Names { get; } = [];

    /// <summary>
    /// Count the CUDA devices the stages of this process can train on, one per training or distillation worker; the
    /// heartbeat records the highest, and a pipeline whose <c>train.num_gpus</c> no live worker offers is refused.
    /// </summary>
    public List<Func<int>> GpuCounters { get; } = [];
}
