using NvDinoPipeline.Orchestrator;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Orchestrator.Tests;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Cli.Tests;

/// <summary>The command against a cluster: requests go through RabbitMQ, status comes from PostgreSQL.</summary>
public sealed class ClusterCommandsTests(RabbitMqFixture broker, PostgresFixture database)
    : IClassFixture<RabbitMqFixture>, IClassFixture<PostgresFixture>, IDisposable
{
    private readonly TempDirectory _home = new("nvdino-cli-cluster");

    public void Dispose() => _home.Dispose();

    [Fact]
    public async Task Start_sends_on_rabbitmq_and_status_and_cancel_work_against_the_cluster()
    {
        var settings = EmbeddedSettings(_home.Path);
        settings["Messaging:Transport"] = "RabbitMq";
        settings["Messaging:RabbitMq"] = broker.Uri.ToString();
        settings["State:Provider"] = "Postgres";
        settings["State:ConnectionString"] = database.ConnectionString;
        var standIns = new StandIns();
        standIns.Before[PipelineStage.Training] = (_, cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);
        using var cluster = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await cluster.StartAsync();
        var nvdino = new NvdinoProcess(_home.Path, new Dictionary<string, string>
        {
            ["Messaging__Transport"] = "RabbitMq",
            ["Messaging__RabbitMq"] = broker.Uri.ToString(),
            ["State__Provider"] = "Postgres",
            ["State__ConnectionString"] = database.ConnectionString,
            ["ArtifactStore__AllowedReadRoots__0"] = _home.Combine("images"),
        });
        Directory.CreateDirectory(_home.Combine("images"));

        var started = await nvdino.RunAsync("pipeline", "start", "--train", _home.Combine("images"), "--test", _home.Combine("images"));
        Assert.True(started.ExitCode == 0, started.Error);
        var id = Guid.Parse(started.Output.Trim());
        await WaitForAsync(cluster, id, (_, jobs) => jobs.Any(j => j.Step == "train" && j.Status == JobStatus.Running));

        var status = await nvdino.RunAsync("pipeline", "status", id.ToString());
        Assert.Contains("stage-train  Done", status.Output);
        Assert.Contains("train        Running", status.Output);

        var cancel = await nvdino.RunAsync("pipeline", "cancel", id.ToString());
        Assert.Equal(0, cancel.ExitCode);
        var (pipeline, _) = await WaitForAsync(cluster, id, (p, jobs) => p.Status == JobStatus.Canceled && jobs.Job("train").Status == JobStatus.Canceled);
        Assert.Equal(JobStatus.Canceled, pipeline.Status);
        await cluster.StopAsync();
    }
}
