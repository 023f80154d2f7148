using NvDinoPipeline.Contracts;
using NvDinoPipeline.State;
using Prometheus;

namespace NvDinoPipeline.Hosting.Observability;

/// <summary>
/// The process's figures in Prometheus' text format, served on <c>/metrics</c> beside the health endpoints: the stage
/// jobs it ran by stage and outcome, how long they took, how many run now, and the images its finished jobs processed.
/// One registry per host, so that hosts sharing a process (tests, <c>nvdino serve</c>'s workers) count only their own.
/// </summary>
public sealed class PipelineMetrics
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>How a stage job left this worker.</summary>
    public static class Outcomes
    {
        public const string Done = "done";
        public const string Failed = "failed";
        public const string Canceled = "canceled";
        public const string HandedBack = "handed_back";
        public const string Retried = "retried";
        public const string Lost = "lost";
    }

    private readonly CollectorRegistry registry = Metrics.NewCustomRegistry();
    private readonly Counter jobs;
    private readonly Histogram durations;
    private readonly Gauge running;
    private readonly Counter images;
    private readonly Histogram queueWaits;
    private readonly Gauge imagesPerSecond;
    private readonly Gauge heartbeat;

    public PipelineMetrics()
    {
        var factory = Metrics.WithCustomRegistry(registry);
        jobs = factory.CreateCounter("nvdino_stage_jobs_total", "Stage jobs this process ran, by stage and how they ended.",
            new CounterConfiguration { LabelNames = ["stage", "outcome"] });
        durations = factory.CreateHistogram("nvdino_stage_job_duration_seconds", "Time from claiming a stage job to its end, by stage and outcome.",
            new HistogramConfiguration { LabelNames = ["stage", "outcome"], Buckets = Histogram.ExponentialBuckets(0.25, 2, 18) });
        running = factory.CreateGauge("nvdino_stage_jobs_running", "Stage jobs this process runs now, by stage.",
            new GaugeConfiguration { LabelNames = ["stage"] });
        images = factory.CreateCounter("nvdino_stage_images_total", "Images the finished stage jobs of this process processed (staged, embedded, evaluated), by stage.",
            new CounterConfiguration { LabelNames = ["stage"] });
        queueWaits = factory.CreateHistogram("nvdino_stage_queue_wait_seconds", "Time from a stage job's record (or its last hand-back) to this worker's claim, by stage.",
            new HistogramConfiguration { LabelNames = ["stage"], Buckets = Histogram.ExponentialBuckets(0.05, 2, 18) });
        imagesPerSecond = factory.CreateGauge("nvdino_stage_images_per_second", "Throughput of the last finished job of each stage that reports one.",
            new GaugeConfiguration { LabelNames = ["stage"] });
        heartbeat = factory.CreateGauge("nvdino_worker_heartbeat_timestamp_seconds", "Unix time of this worker's last heartbeat recorded in the state database.");
    }

    /// <summary>A job of <paramref name="stage"/> was claimed <paramref name="wait"/> after it was queued.</summary>
    public void Claimed(PipelineStage stage, TimeSpan wait) => queueWaits.WithLabels(stage.ToString()).Observe(Math.Max(0, wait.TotalSeconds));

    /// <summary>The worker's heartbeat reached the state database at <paramref name="at"/>.</summary>
    public void HeartbeatRecorded(DateTimeOffset at) => heartbeat.Set(at.ToUnixTimeMilliseconds() / 1000.0);

    /// <summary>Counts a claimed job as running until the returned scope is disposed.</summary>
    public IDisposable Running(PipelineStage stage)
    {
        var gauge = running.WithLabels(stage.ToString());
        gauge.Inc();
        return new Decrement(gauge);
    }

    /// <param name="figures">The job's figures: staging's <c>images</c>, inference's <c>embedded</c>, evaluation's <c>test_images</c> are counted.</param>
    public void Finished(PipelineStage stage, string outcome, TimeSpan duration, IReadOnlyDictionary<string, double>? figures = null)
    {
        var name = stage.ToString();
        jobs.WithLabels(name, outcome).Inc();
        durations.WithLabels(name, outcome).Observe(duration.TotalSeconds);
        if (outcome == Outcomes.Done && figures is not null && ImagesOf(stage, figures) is { } count and >= 0)
            images.WithLabels(name).Inc(count);
        if (outcome == Outcomes.Done && figures is not null && figures.TryGetValue("images_per_second", out var rate) && double.IsFinite(rate))
            imagesPerSecond.WithLabels(name).Set(rate);
    }

    /// <summary>
    /// Reads <paramref name="read"/> before every scrape and publishes it as <c>nvdino_pipelines{status}</c> and
    /// <c>nvdino_jobs{stage,status}</c> (every stage and status, 0 where there is none), with
    /// <c>nvdino_state_database_up</c> 0 while the database does not answer. The orchestrator does this: its figures are
    /// the whole deployment's.
    /// </summary>
    public void ObserveState(Func<CancellationToken, Task<StateCounts>> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        var factory = Metrics.WithCustomRegistry(registry);
        var pipelines = factory.CreateGauge("nvdino_pipelines", "Pipelines in the state database, by status.",
            new GaugeConfiguration { LabelNames = ["status"] });
        var stateJobs = factory.CreateGauge("nvdino_jobs", "Stage jobs in the state database, by stage and status.",
            new GaugeConfiguration { LabelNames = ["stage", "status"] });
        var up = factory.CreateGauge("nvdino_state_database_up", "1 when the state database answered the last scrape's count, else 0.");
        registry.AddBeforeCollectCallback(async cancellationToken =>
        {
            StateCounts counts;
            try
            {
                counts = await read(cancellationToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                up.Set(0);
                return;
            }
            up.Set(1);
            foreach (var status in Enum.GetValues<JobStatus>())
            {
                pipelines.WithLabels(status.ToString()).Set(counts.Pipelines.GetValueOrDefault(status));
                foreach (var stage in Enum.GetValues<PipelineStage>())
                    stateJobs.WithLabels(stage.ToString(), status.ToString()).Set(counts.Jobs.GetValueOrDefault((stage, status)));
            }
        });
    }

    /// <summary>Writes every figure in Prometheus' text exposition format.</summary>
    public Task WriteAsync(Stream destination, CancellationToken cancellationToken) =>
        registry.CollectAndExportAsTextAsync(destination, cancellationToken);

    private static double? ImagesOf(PipelineStage stage, IReadOnlyDictionary<string, double> figures)
    {
        var key = stage switch
        {
            PipelineStage.Staging => "images",
            PipelineStage.Inference => "embedded",
            PipelineStage.Evaluation => "test_images",
            _ => null,
        };
        return key is not null && figures.TryGetValue(key, out var value) && double.IsFinite(value) ? value : null;
    }

    private sealed class Decrement(Gauge.Child gauge) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
                gauge.Dec();
        }
    }
}
