using MassTransit;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>What a worker's claim on a job guarantees when the database or another worker gets in its way.</summary>
public sealed class JobClaimTests : IDisposable
{
    private static readonly string Spec = SpecLoader.CreateDefault().Defaults.ToJson();
    private readonly TempDirectory _folder = new("nvdino-claims");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task A_database_locked_longer_than_its_busy_timeout_while_a_worker_claims_delays_the_job_instead_of_dropping_its_command()
    {
        var settings = EmbeddedSettings(_folder.Path);
        settings["State:BusyTimeout"] = "00:00:00.500";
        settings["Messaging:RetryInitialInterval"] = "00:00:00.200";
        settings["Messaging:RetryMaxInterval"] = "00:00:01";
        var standIns = new StandIns();
        using var host = Build(settings, p => p.AddStandInWorkers(standIns));
        await host.StartAsync();
        var command = StagingCommand(host);

        // Another process holds the write lock for several busy timeouts while the command arrives.
        await using (var locker = new SqliteConnection(settings["State:ConnectionString"]))
        {
            await locker.OpenAsync();
            await using (var begin = locker.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE;";
                await begin.ExecuteNonQueryAsync();
            }
            await (await host.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Staging).Queue))).Send(command);
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.Equal(0, standIns.RunsOf("staging-Train"));
            await using var commit = locker.CreateCommand();
            commit.CommandText = "COMMIT;";
            await commit.ExecuteNonQueryAsync();
        }

        var jobs = host.Services.GetRequiredService<JobStore>();
        var done = await WaitForJobAsync(jobs, command.JobId, j => j.Status == JobStatus.Done);
        Assert.Equal(1, done.Claims);
        Assert.Equal(1, standIns.RunsOf("staging-Train"));
        await host.StopAsync();
    }

    [Fact]
    public async Task A_worker_whose_job_was_taken_over_stops_it_and_writes_nothing_more()
    {
        var settings = EmbeddedSettings(_folder.Path);
        var standIns = new StandIns();
        var stopped = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        standIns.Before[PipelineStage.Staging] = async (context, cancellationToken) =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // The run may not save: the job folder is the other worker's now.
                stopped.SetResult(context.SaveOnStop.IsCancellationRequested);
                throw;
            }
        };
        using var host = Build(settings, p => p.AddStandInWorkers(standIns));
        await host.StartAsync();
        var command = StagingCommand(host);
        await (await host.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Staging).Queue))).Send(command);
        var jobs = host.Services.GetRequiredService<JobStore>();
        var running = await WaitForJobAsync(jobs, command.JobId, j => j.Status == JobStatus.Running && j.Progress is not null);

        // Another worker took the job over (this worker's lease had run out while it could not renew it).
        const string other = "other-host/1/0000";
        var leaseOfOther = DateTime.UtcNow.AddMinutes(10);
        await UpdateJobAsync(settings, command.JobId, JobStatus.Running, leaseOfOther, other);

        Assert.True(await stopped.Task.WaitAsync(TimeSpan.FromSeconds(10)), "the stopped run was still allowed to save");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var after = (await jobs.FindAsync(command.JobId, CancellationToken.None))!;
        Assert.Equal((JobStatus.Running, other), (after.Status, after.WorkerId));
        Assert.Equal(leaseOfOther, after.LeaseExpiresAt!.Value, TimeSpan.FromSeconds(1));
        Assert.Null(after.Completion);
        Assert.Equal(running.ProgressMessage, after.ProgressMessage);
        // Its renewals no longer extend the other worker's lease, and its hand-back is refused.
        Assert.False((await jobs.RenewLeaseAsync(command.JobId, running.WorkerId!, TimeSpan.FromHours(1), CancellationToken.None)).Owned);
        Assert.False(await jobs.ReleaseAsync(command.JobId, running.WorkerId!, [], CancellationToken.None));
        Assert.Equal(leaseOfOther, (await jobs.FindAsync(command.JobId, CancellationToken.None))!.LeaseExpiresAt!.Value, TimeSpan.FromSeconds(1));
        await host.StopAsync();
    }

    private static StageDataset StagingCommand(Microsoft.Extensions.Hosting.IHost host)
    {
        var pipelineId = NewId.NextGuid();
        var jobId = NewId.NextGuid();
        return new StageDataset
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = Spec,
            OutputUri = host.Services.GetRequiredService<Storage.IArtifactStore>().JobFolder(pipelineId, jobId),
            SourceUri = new Uri("file:///data/images_train.tar.gz"),
            Role = DatasetRole.Train,
        };
    }

    private static async Task<JobRecord> WaitForJobAsync(JobStore jobs, Guid jobId, Func<JobRecord, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        JobRecord? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await jobs.FindAsync(jobId, CancellationToken.None);
                if (last is not null && condition(last))
                {
                    return last;
                }
            }
            catch (SqliteException)
            {
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"Job {jobId} is {last?.Status.ToString() ?? "missing"}.");
    }
}
