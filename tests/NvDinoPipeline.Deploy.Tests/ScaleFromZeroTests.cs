using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>
/// What KEDA's RabbitMQ scaler sees through the management API (deploy/k8s: <c>protocol: http</c>,
/// <c>mode: QueueLength</c>): a command waits, counted, in its stage's queue while the stage has no
/// worker at all, and it still counts while a worker runs its job, so scale-in spares busy workers.
/// </summary>
public sealed class ScaleFromZeroTests(RabbitMqFixture broker, PostgresFixture database)
    : IClassFixture<RabbitMqFixture>, IClassFixture<PostgresFixture>, IDisposable
{
    private readonly TempDirectory _folder = new("nvdino-scale-zero");

    public void Dispose() => _folder.Dispose();

    private sealed record QueueDepth(int Messages, int Ready, int Unacknowledged)
    {
        public override string ToString() => $"messages {Messages} (ready {Ready}, unacknowledged {Unacknowledged})";
    }

    private async Task<QueueDepth?> ReadQueueAsync(HttpClient management, string queue)
    {
        using var response = await management.GetAsync($"api/queues/{Uri.EscapeDataString(broker.VirtualHost)}/{queue}");
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        int Count(string name) => json.RootElement.TryGetProperty(name, out var value) ? value.GetInt32() : 0;
        return new QueueDepth(Count("messages"), Count("messages_ready"), Count("messages_unacknowledged"));
    }

    [Fact]
    public async Task A_command_waits_counted_in_its_queue_with_no_worker_and_stays_counted_while_a_worker_runs_it()
    {
        var managementUri = broker.Broker.ManagementUri
            ?? throw new TestServiceUnavailableException("The broker has no management API, which KEDA's RabbitMQ scaler reads.");
        using var management = new HttpClient { BaseAddress = new UriBuilder(managementUri) { UserName = "", Password = "", Path = "/" }.Uri };
        management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.UnescapeDataString(managementUri.UserInfo))));
        var settings = TestHosts.EmbeddedSettings(_folder.Path);
        settings["Messaging:Transport"] = "RabbitMq";
        settings["Messaging:RabbitMq"] = broker.Uri.ToString();
        settings["State:Provider"] = "Postgres";
        settings["State:ConnectionString"] = database.ConnectionString;
        var command = GracefulShutdownTests.NewCommand(_folder.Path);
        var depth = TimeSpan.FromSeconds(30);

        // A sender alone, as the orchestrator is while a stage is scaled to zero.
        using (var sender = TestHosts.Build(settings, _ => { }))
        {
            await sender.StartAsync();
            var endpoint = await sender.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Staging).Queue));
            await endpoint.Send(command);
            await sender.StopAsync();
        }
        var waiting = await TestHosts.WaitForAsync(() => ReadQueueAsync(management, StageCatalog.For(PipelineStage.Staging).Queue),
            q => q is { Messages: 1, Ready: 1 }, depth, "one ready command counted in stage-dataset");

        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = new RunnerScript(cancellationToken => release.Task.WaitAsync(cancellationToken));
        using var worker = TestHosts.Build(settings, p =>
        {
            p.Services.AddSingleton(script);
            p.AddStageWorker<StageDataset, DatasetStaged, ScriptedStagingRunner>(defaultConcurrentJobs: 1);
        });
        await worker.StartAsync();
        await script.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var running = await TestHosts.WaitForAsync(() => ReadQueueAsync(management, StageCatalog.For(PipelineStage.Staging).Queue),
            q => q is { Unacknowledged: 1 }, depth, "the running job's command counted as unacknowledged");

        release.SetResult();
        var jobs = worker.Services.GetRequiredService<JobStore>();
        await TestHosts.WaitForAsync(() => jobs.FindAsync(command.JobId, CancellationToken.None),
            job => job?.Status == JobStatus.Done, TimeSpan.FromSeconds(30), "the job done");
        var drained = await TestHosts.WaitForAsync(() => ReadQueueAsync(management, StageCatalog.For(PipelineStage.Staging).Queue),
            q => q is { Messages: 0 }, depth, "an empty stage-dataset queue");
        await worker.StopAsync();

        Assert.Equal(new QueueDepth(1, 1, 0), waiting);
        Assert.Equal(new QueueDepth(1, 0, 1), running);
        Assert.Equal(new QueueDepth(0, 0, 0), drained);
    }
}
