using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.State;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>
/// train.num_gpus and train.gpu_ids against the GPUs the live workers report in their heartbeats: refused at start when every
/// training worker up has fewer, accepted when one has enough, waiting (and saying for what) while none is up.
/// </summary>
public sealed class GpuDemandTests : IDisposable
{
    private readonly TempDirectory _folder = new();

    public void Dispose() => _folder.Dispose();

    private async Task<(IHost Host, HttpClient Http)> StartAsync(Action<PipelineHostBuilder> workers)
    {
        var settings = LiveWorkerSettings(EmbeddedSettings(_folder.Path));
        settings["ArtifactStore:AllowedReadRoots:1"] = "/data";
        var host = Build(settings, pipeline => workers(pipeline.AddOrchestrator()));
        await host.StartAsync();
        var url = host.Services.GetRequiredService<HostEndpoint>().Url ?? throw new InvalidOperationException("The host serves no API.");
        return (host, new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) });
    }

    /// <summary>Until the host's first heartbeat is in the table, what it offers is unknown.</summary>
    private static async Task<IReadOnlyList<int>> LiveGpusAsync(IHost host, string stage)
    {
        var workers = host.Services.GetRequiredService<WorkerStore>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var live = await workers.LiveGpusAsync(stage, CancellationToken.None);
            if (live.Count > 0 || DateTime.UtcNow > deadline)
            {
                return live;
            }
            await Task.Delay(50);
        }
    }

    private static StringContent Body(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    private static object Start(Dictionary<string, object> spec) => new
    {
        train_data = "file:///data/images_train.tar.gz", test_data = "file:///data/images_test.tar.gz", spec,
    };

    [Fact]
    public async Task A_start_asking_for_more_GPUs_than_the_live_training_workers_have_is_refused_naming_the_key_and_what_they_offer()
    {
        var standIns = new StandIns();
        var (host, http) = await StartAsync(pipeline => pipeline.AddStandInWorkers(standIns));
        using var _ = http;
        try
        {
            Assert.Equal([0], await LiveGpusAsync(host, "Training"));

            var answer = await http.PostAsync("api/v1/pipelines", Body(Start(new() { ["train.num_gpus"] = 2 })));
            Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
            var errors = (await answer.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!.AsObject();
            var reason = errors["train.num_gpus"]![0]!.GetValue<string>();
            Assert.Contains("train.num_gpus is 2", reason);
            Assert.Contains("the running Training workers have 0 GPU(s)", reason);
            Assert.Empty((await http.GetFromJsonAsync<JsonArray>("api/v1/pipelines"))!);

            var ids = await http.PostAsync("api/v1/pipelines", Body(Start(new() { ["train.gpu_ids"] = new[] { 1 } })));
            Assert.Equal(HttpStatusCode.BadRequest, ids.StatusCode);
            Assert.Contains("needs 2 GPU(s) on one host",
                (await ids.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!["train.gpu_ids"]![0]!.GetValue<string>());

            // A client that skips the API: the orchestrator refuses the message itself, before any stage runs.
            var start = NewStart("train:\n  num_gpus: 3\n");
            await StartPipelineAsync(host, start);
            var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Error);
            Assert.Contains("train.num_gpus is 3, so each Training job needs 3 GPU(s) on one host", pipeline.ErrorReason);
            Assert.Empty(jobs);
            Assert.Empty(standIns.Runs);
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }

    [Fact]
    public async Task A_worker_that_reports_enough_GPUs_takes_the_pipeline_and_one_with_fewer_than_asked_does_not()
    {
        var standIns = new StandIns();
        var (host, http) = await StartAsync(pipeline =>
        {
            pipeline.AddStandInWorkers(standIns);
            pipeline.Served.GpuCounters.Add(() => 4);
        });
        using var _ = http;
        try
        {
            Assert.Equal([4], await LiveGpusAsync(host, "Distillation"));

            var accepted = await http.PostAsync("api/v1/pipelines", Body(Start(new() { ["train.num_gpus"] = 4, ["pipeline.stages.distill"] = true })));
            Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
            var id = Guid.Parse((await accepted.Content.ReadFromJsonAsync<JsonObject>())!["pipeline_id"]!.GetValue<string>());
            await WaitForAsync(host, id, (p, _) => p.Status == JobStatus.Done);

            var refused = await http.PostAsync("api/v1/pipelines", Body(Start(new() { ["train.num_gpus"] = 8 })));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("have 4 GPU(s): start a Training worker on a host with 8 GPUs, or lower train.num_gpus",
                (await refused.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!["train.num_gpus"]![0]!.GetValue<string>());
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }

    [Fact]
    public async Task With_no_training_worker_up_the_pipeline_waits_and_its_status_says_how_many_GPUs_the_worker_needs()
    {
        var standIns = new StandIns();
        var (host, http) = await StartAsync(pipeline =>
        {
            pipeline.Services.AddSingleton(standIns);
            pipeline.AddStageWorker<StageDataset, DatasetStaged, StagingStandIn>(defaultConcurrentJobs: 2);
        });
        using var _ = http;
        try
        {
            Assert.Empty(await host.Services.GetRequiredService<WorkerStore>().LiveGpusAsync("Training", CancellationToken.None));
            await LiveGpusAsync(host, "Staging");

            var accepted = await http.PostAsync("api/v1/pipelines", Body(Start(new() { ["train.num_gpus"] = 2 })));
            Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
            var id = Guid.Parse((await accepted.Content.ReadFromJsonAsync<JsonObject>())!["pipeline_id"]!.GetValue<string>());
            await WaitForAsync(host, id, (_, jobs) => jobs.Any(j => j.Step == "train" && j.Status == JobStatus.Pending));

            var view = await http.GetFromJsonAsync<JsonObject>($"api/v1/pipelines/{id}");
            var train = view!["steps"]!.AsArray().Single(s => s!["step"]!.GetValue<string>() == "train")!;
            Assert.Equal("waiting for a worker: no Training worker is running (train.num_gpus is 2: it needs one on a host with 2 GPUs)",
                train["waiting"]!.GetValue<string>());
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }
}
