using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>
/// The cluster configuration: the orchestrator and the workers in separate hosts, talking over a
/// real RabbitMQ, keeping state in a real PostgreSQL.
/// </summary>
public sealed class ClusterPipelineTests(RabbitMqFixture broker, PostgresFixture database)
    : IClassFixture<RabbitMqFixture>, IClassFixture<PostgresFixture>, IDisposable
{
    private readonly TempDirectory _folder = new("nvdino-cluster");

    public void Dispose() => _folder.Dispose();

    private Dictionary<string, string?> ClusterSettings()
    {
        var settings = EmbeddedSettings(_folder.Path);
        settings["Messaging:Transport"] = "RabbitMq";
        settings["Messaging:RabbitMq"] = broker.Uri.ToString();
        settings["State:Provider"] = "Postgres";
        settings["State:ConnectionString"] = database.ConnectionString;
        return settings;
    }

    [Fact]
    public async Task A_pipeline_crosses_separate_hosts_and_survives_an_orchestrator_restart_running_each_stage_once()
    {
        var settings = LiveWorkerSettings(ClusterSettings());
        var standIns = new StandIns();
        var releaseTraining = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        standIns.Before[PipelineStage.Training] = (_, cancellationToken) => releaseTraining.Task.WaitAsync(cancellationToken);
        using var workers = Build(settings, p => p.AddStandInWorkers(standIns));
        await workers.StartAsync();
        var start = NewStart(SpecLoader.CreateDefault().Defaults.ToJson());

        using (var orchestrator = Build(settings, p => p.AddOrchestrator()))
        {
            await orchestrator.StartAsync();
            await StartPipelineAsync(orchestrator, start);
            await WaitForAsync(workers, start.PipelineId, (_, jobs) => jobs.Any(j => j.Step == "train" && j.Status == JobStatus.Running));
            await orchestrator.StopAsync();
        }

        // Training finishes while no orchestrator runs: its completion waits in the broker.
        releaseTraining.SetResult();
        var (stalled, _) = await WaitForAsync(workers, start.PipelineId, (_, jobs) => jobs.Job("train").Status == JobStatus.Done);
        await Task.Delay(500);
        Assert.DoesNotContain((await ReadAsync(workers, start.PipelineId)).Jobs, j => j.Step == "export");
        Assert.Equal(JobStatus.Running, stalled.Status);

        using var restarted = Build(settings, p => p.AddOrchestrator());
        await restarted.StartAsync();
        var (pipeline, finalJobs) = await WaitForAsync(restarted, start.PipelineId, (p, _) => p.Status == JobStatus.Done);

        Assert.Equal(7, finalJobs.Count);
        Assert.All(finalJobs, job => Assert.Equal(1, job.Attempt));
        Assert.All(standIns.Runs, run => Assert.Equal(1, run.Value));
        Assert.Equal(7, standIns.Runs.Count);
        Assert.Null(pipeline.ErrorReason);
        await restarted.StopAsync();
        await workers.StopAsync();
    }

    [Fact]
    public async Task A_stage_failure_on_the_cluster_fails_the_pipeline_with_the_stage_reason()
    {
        var settings = ClusterSettings();
        var standIns = new StandIns();
        standIns.Before[PipelineStage.EngineGeneration] = (_, _) =>
            throw new Hosting.Workers.StageUnavailableException("TensorRT is not installed: trtexec was not found on PATH");
        using var workers = Build(settings, p => p.AddStandInWorkers(standIns));
        using var orchestrator = Build(settings, p => p.AddOrchestrator());
        await workers.StartAsync();
        await orchestrator.StartAsync();
        var start = NewStart(SpecLoader.CreateDefault().Defaults.ToJson(), withTest: false);
        await StartPipelineAsync(orchestrator, start);

        var (pipeline, jobs) = await WaitForAsync(orchestrator, start.PipelineId, (p, _) => p.Status == JobStatus.Error);

        Assert.Equal(PipelineStage.EngineGeneration, pipeline.FailedStage);
        Assert.Equal("TensorRT is not installed: trtexec was not found on PATH", pipeline.ErrorReason);
        Assert.Equal(JobStatus.Done, jobs.Job("export").Status);
        await orchestrator.StopAsync();
        await workers.StopAsync();
    }

    [Fact]
    public async Task A_command_no_consumer_can_read_goes_to_its_error_queue_and_the_worker_keeps_serving()
    {
        var settings = ClusterSettings();
        var standIns = new StandIns();
        using var workers = Build(settings, p => p.AddStandInWorkers(standIns));
        using var orchestrator = Build(settings, p => p.AddOrchestrator());
        await workers.StartAsync();
        await orchestrator.StartAsync();

        await workers.Services.GetRequiredService<MassTransit.IBusControl>().WaitUntilReadyAsync(CancellationToken.None);
        await broker.PublishRawAsync(StageCatalog.For(PipelineStage.Staging).Queue, "{\"message\": {\"jobId\": ", "application/vnd.masstransit+json");
        var errors = await WaitForDepthAsync($"{StageCatalog.For(PipelineStage.Staging).Queue}_error", 1);
        Assert.Equal(1, errors);

        var start = NewStart(SpecLoader.CreateDefault().Defaults.ToJson(), withTest: false);
        await StartPipelineAsync(orchestrator, start);
        await WaitForAsync(orchestrator, start.PipelineId, (p, _) => p.Status == JobStatus.Done);
        await orchestrator.StopAsync();
        await workers.StopAsync();
    }

    private async Task<long?> WaitForDepthAsync(string queue, long depth)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        long? seen = null;
        while (DateTime.UtcNow < deadline)
        {
            seen = await broker.QueueDepthAsync(queue);
            if (seen >= depth)
            {
                return seen;
            }
            await Task.Delay(500);
        }
        var others = string.Join(", ", await Task.WhenAll(new[] { "stage-dataset", "stage-dataset_skipped", "stage-dataset_error" }
            .Select(async q => $"{q}={await broker.QueueDepthAsync(q)}")));
        throw new TimeoutException($"{queue} held {seen?.ToString() ?? "no queue"} messages, not {depth} ({others}).");
    }
}
