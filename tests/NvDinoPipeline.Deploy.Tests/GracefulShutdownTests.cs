using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.State;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>
/// What a rolling update or a scale-in does to a worker in the middle of a job: the process stops,
/// the job goes back to Pending and the broker gives its command to the next worker.
/// </summary>
public sealed class GracefulShutdownTests(RabbitMqFixture broker, PostgresFixture database)
    : IClassFixture<RabbitMqFixture>, IClassFixture<PostgresFixture>, IDisposable
{
    private readonly TempDirectory _folder = new("nvdino-shutdown");

    public void Dispose() => _folder.Dispose();

    private Dictionary<string, string?> ClusterSettings()
    {
        var settings = TestHosts.EmbeddedSettings(_folder.Path);
        settings["Messaging:Transport"] = "RabbitMq";
        settings["Messaging:RabbitMq"] = broker.Uri.ToString();
        settings["State:Provider"] = "Postgres";
        settings["State:ConnectionString"] = database.ConnectionString;
        // Long enough that only a hand-back, never an expired claim, lets the second worker in.
        settings["State:JobLease"] = "00:05:00";
        settings["Shutdown:Timeout"] = "00:00:20";
        return settings;
    }

    [Fact]
    public async Task A_worker_stopped_mid_job_hands_the_job_back_and_a_second_worker_completes_it()
    {
        var settings = ClusterSettings();
        var firstScript = RunnerScript.HoldUntilCanceled();
        var secondScript = new RunnerScript();
        var command = NewCommand();

        using var first = TestHosts.Build(settings, p =>
        {
            p.Services.AddSingleton(firstScript);
            p.AddStageWorker<StageDataset, DatasetStaged, ScriptedStagingRunner>(defaultConcurrentJobs: 1);
        });
        await first.StartAsync();
        var firstWorker = first.Services.GetRequiredService<WorkerIdentity>().Id;
        var jobs = first.Services.GetRequiredService<JobStore>();
        var send = await first.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Staging).Queue));
        await send.Send(command);

        await firstScript.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var running = await jobs.FindAsync(command.JobId, CancellationToken.None);
        Assert.Equal(JobStatus.Running, running!.Status);
        Assert.Equal(firstWorker, running.WorkerId);

        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await first.StopAsync();
        stopping.Stop();
        Assert.True(firstScript.SawCancellation, "the running job was not told the process is stopping");
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(15), $"stopping took {stopping.Elapsed}, as if the job ignored the stop");

        var handedBack = await jobs.FindAsync(command.JobId, CancellationToken.None);
        Assert.Equal(JobStatus.Pending, handedBack!.Status);
        Assert.Null(handedBack.WorkerId);

        using var second = TestHosts.Build(settings, p =>
        {
            p.Services.AddSingleton(secondScript);
            p.AddStageWorker<StageDataset, DatasetStaged, ScriptedStagingRunner>(defaultConcurrentJobs: 1);
        });
        await second.StartAsync();
        var secondWorker = second.Services.GetRequiredService<WorkerIdentity>().Id;
        var secondJobs = second.Services.GetRequiredService<JobStore>();

        var done = await TestHosts.WaitForAsync(
            () => secondJobs.FindAsync(command.JobId, CancellationToken.None),
            job => job?.Status == JobStatus.Done,
            TimeSpan.FromSeconds(60), "the handed-back job done by the second worker");

        Assert.Equal(secondWorker, done!.WorkerId);
        Assert.Equal(2, done.Claims);
        Assert.Equal(1, firstScript.Runs);
        Assert.Equal(1, secondScript.Runs);
        await second.StopAsync();
    }

    private StageDataset NewCommand() => NewCommand(_folder.Path);

    public static StageDataset NewCommand(string folder)
    {
        var pipelineId = NewId.NextGuid();
        var jobId = NewId.NextGuid();
        return new StageDataset
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = "{}",
            OutputUri = new Uri(new Uri(new Uri(Path.Combine(folder, "artifacts") + "/").AbsoluteUri), $"{pipelineId}/{jobId}/"),
            SourceUri = new Uri("file:///data/images_train.tar.gz"),
            Role = DatasetRole.Train,
        };
    }
}

/// <summary>What the stand-in staging runner of one host does: hold the job (until released, or until the host stops), or finish at once.</summary>
public sealed class RunnerScript(Func<CancellationToken, Task>? hold = null)
{
    private int _runs;

    public static RunnerScript HoldUntilCanceled() => new(cancellationToken => Task.Delay(Timeout.Infinite, cancellationToken));

    public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Runs => _runs;

    public bool SawCancellation { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _runs);
        Started.TrySetResult();
        if (hold is null)
        {
            return;
        }
        try
        {
            await hold(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            SawCancellation = true;
            throw;
        }
    }
}

/// <summary>A test double of the staging stage: the real job machinery around it, a scripted run inside.</summary>
public sealed class ScriptedStagingRunner(RunnerScript script) : IStageRunner<StageDataset, DatasetStaged>
{
    public async Task<StageResult<DatasetStaged>> RunAsync(StageDataset command, StageContext context, CancellationToken cancellationToken)
    {
        await script.RunAsync(cancellationToken);
        var completed = new DatasetStaged
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            Role = command.Role,
            ManifestUri = context.Output("manifest.jsonl"),
            StatisticsUri = context.Output("statistics.json"),
            DatasetUri = context.Output("shards/"),
            ImageCount = 1,
            SkippedCount = 0,
            DuplicateCount = 0,
        };
        return new StageResult<DatasetStaged>(completed, new Dictionary<string, Uri>(), new Dictionary<string, double>());
    }
}
