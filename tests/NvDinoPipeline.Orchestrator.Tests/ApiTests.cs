using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>The HTTP API against a running host (orchestrator and stand-in workers), over real HTTP.</summary>
public sealed class ApiTests : IAsyncLifetime
{
    private const string ControlToken = "control-token-0123456789";
    private const string ReadToken = "read-only-token-0123456789";

    private readonly TempDirectory _folder = new();
    private readonly StandIns _standIns = new();
    private IHost _host = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync() => (_host, _http) = await StartAsync(_folder.Path, _standIns);

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.StopAsync();
        _host.Dispose();
        _folder.Dispose();
    }

    private static async Task<(IHost Host, HttpClient Http)> StartAsync(string folder, StandIns standIns, Dictionary<string, string?>? extra = null)
    {
        var settings = LiveWorkerSettings(EmbeddedSettings(folder));
        // Where the stand-ins' made-up data lives.
        settings["ArtifactStore:AllowedReadRoots:1"] = "/data";
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }
        var host = Build(settings, pipeline => pipeline.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        var url = host.Services.GetRequiredService<HostEndpoint>().Url ?? throw new InvalidOperationException("The host serves no API.");
        return (host, new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) });
    }

    private static StringContent Body(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    private async Task<Guid> StartPipelineAsync(object? spec = null)
    {
        var answer = await _http.PostAsync("api/v1/pipelines", Body(new
        {
            train_data = "file:///data/images_train.tar.gz",
            test_data = "file:///data/images_test.tar.gz",
            spec = spec ?? new { pipeline = new { stages = new { evaluate = true } } },
            name = "from the API",
        }));
        Assert.Equal(HttpStatusCode.Accepted, answer.StatusCode);
        var accepted = await answer.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal($"/api/v1/pipelines/{accepted!["pipeline_id"]}", answer.Headers.Location?.ToString());
        return Guid.Parse(accepted["pipeline_id"]!.GetValue<string>());
    }

    private async Task<JsonObject> WaitForPipelineAsync(Guid id, string status)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        JsonObject? last = null;
        while (DateTime.UtcNow < deadline)
        {
            var answer = await _http.GetAsync($"api/v1/pipelines/{id}");
            if (answer.StatusCode == HttpStatusCode.OK)
            {
                last = await answer.Content.ReadFromJsonAsync<JsonObject>();
                if (last!["status"]!.GetValue<string>() == status)
                {
                    return last;
                }
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"Pipeline {id} did not reach {status}: {last?.ToJsonString()}");
    }

    private static Guid JobOf(JsonObject pipeline, string step) =>
        Guid.Parse(pipeline["steps"]!.AsArray().Single(s => s!["step"]!.GetValue<string>() == step)!["job_id"]!.GetValue<string>());

    private async Task<Guid> StartJobAsync(object request)
    {
        var answer = await _http.PostAsync("api/v1/jobs", Body(request));
        Assert.True(answer.StatusCode == HttpStatusCode.Accepted, await answer.Content.ReadAsStringAsync());
        return Guid.Parse((await answer.Content.ReadFromJsonAsync<JsonObject>())!["pipeline_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_pipeline_started_through_the_API_runs_to_the_end_and_its_status_list_and_jobs_say_so()
    {
        var id = await StartPipelineAsync();
        var done = await WaitForPipelineAsync(id, "Done");

        Assert.Equal("from the API", done["name"]!.GetValue<string>());
        var steps = done["steps"]!.AsArray().Select(s => s!["step"]!.GetValue<string>()).ToList();
        Assert.Equal(["stage-train", "stage-test", "train", "export", "engine", "inference", "evaluate"], steps);
        Assert.All(done["steps"]!.AsArray(), s => Assert.Equal("Done", s!["status"]!.GetValue<string>()));

        var list = await _http.GetFromJsonAsync<JsonArray>("api/v1/pipelines?limit=5");
        Assert.Contains(list!, p => p!["id"]!.GetValue<string>() == id.ToString());

        var trainJob = JobOf(done, "train");
        var job = await _http.GetFromJsonAsync<JsonObject>($"api/v1/jobs/{trainJob}");
        Assert.Equal("train", job!["action"]!.GetValue<string>());
        Assert.Equal("Done", job["status"]!.GetValue<string>());
        Assert.Equal(id.ToString(), job["pipeline_id"]!.GetValue<string>());
        Assert.Equal(JobOf(done, "stage-train").ToString(), job["parent_job_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_spec_that_does_not_validate_is_refused_with_400_naming_the_key_and_nothing_starts()
    {
        var answer = await _http.PostAsync("api/v1/pipelines", Body(new
        {
            train_data = "file:///data/images_train.tar.gz",
            spec = new Dictionary<string, object> { ["train.num_epoch"] = 3, ["train.num_epochs"] = "abc" },
        }));

        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        var problem = await answer.Content.ReadFromJsonAsync<JsonObject>();
        var errors = problem!["errors"]!.AsObject();
        Assert.Contains("train.num_epoch", errors.Select(e => e.Key));
        Assert.Contains("did you mean 'train.num_epochs'", errors["train.num_epoch"]![0]!.GetValue<string>());
        Assert.Contains("train.num_epochs", errors.Select(e => e.Key));
        Assert.Empty((await _http.GetFromJsonAsync<JsonArray>("api/v1/pipelines"))!);
    }

    [Theory]
    [InlineData("{\"train_data\": \"relative/path.tar\"}", "train_data")]
    [InlineData("{\"train_data\": \"http://example.com/x.tar\"}", "train_data")]
    [InlineData("{\"train_data\": \"file:///etc/shadow\"}", "train_data")]
    [InlineData("{\"spec\": {}}", "train_data")]
    [InlineData("{\"train_data\": \"file:///data/x.tar\", \"results_queue\": \"amq.bad\"}", "results_queue")]
    [InlineData("{\"train_data\": \"file:///data/x.tar\", \"spec\": [1, 2]}", "spec")]
    public async Task Bad_start_input_is_refused_with_400_naming_the_field(string body, string field)
    {
        var answer = await _http.PostAsync("api/v1/pipelines", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        var problem = await answer.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Contains(field, problem!["errors"]!.AsObject().Select(e => e.Key));
        Assert.Empty((await _http.GetFromJsonAsync<JsonArray>("api/v1/pipelines"))!);
    }

    [Fact]
    public async Task Unknown_pipelines_and_jobs_are_404_and_requests_the_state_does_not_allow_are_409()
    {
        var unknown = Guid.NewGuid();
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"api/v1/pipelines/{unknown}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.PostAsync($"api/v1/pipelines/{unknown}/cancel", Body(new { }))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.PostAsync($"api/v1/pipelines/{unknown}/resume", null)).StatusCode);
        foreach (var path in new[] { "", "/logs", "/artifacts", "/artifacts/x.txt", "/metrics" })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"api/v1/jobs/{unknown}{path}")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await _http.PostAsync("api/v1/jobs", Body(new { action = "export", parent_job_id = unknown }))).StatusCode);

        var id = await StartPipelineAsync();
        await WaitForPipelineAsync(id, "Done");
        Assert.Equal(HttpStatusCode.Conflict, (await _http.PostAsync($"api/v1/pipelines/{id}/cancel", Body(new { reason = "late" }))).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await _http.PostAsync($"api/v1/pipelines/{id}/resume", null)).StatusCode);
    }

    [Fact]
    public async Task Cancel_and_resume_through_the_API_stop_a_running_pipeline_and_finish_it()
    {
        var release = new TaskCompletionSource();
        _standIns.Before[PipelineStage.Training] = (_, cancellationToken) => release.Task.WaitAsync(cancellationToken);
        var id = await StartPipelineAsync();
        await WaitForAsync(_host, id, (_, jobs) => jobs.Any(j => j.Step == "train" && j.Status == JobStatus.Running));

        var cancel = await _http.PostAsync($"api/v1/pipelines/{id}/cancel", Body(new { reason = "changed my mind" }));
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var canceled = await WaitForPipelineAsync(id, "Canceled");
        Assert.Contains("changed my mind", canceled["error"]!.GetValue<string>());

        release.SetResult();
        Assert.Equal(HttpStatusCode.Accepted, (await _http.PostAsync($"api/v1/pipelines/{id}/resume", null)).StatusCode);
        await WaitForPipelineAsync(id, "Done");
    }

    [Fact]
    public async Task Single_actions_with_a_parent_job_reuse_its_pipelines_outputs_and_run_only_the_action()
    {
        var id = await StartPipelineAsync(new { pipeline = new { stages = new { distill = true, evaluate = true } } });
        var full = await WaitForPipelineAsync(id, "Done");
        var (trainJob, distillJob) = (JobOf(full, "train"), JobOf(full, "distill"));
        var runsBefore = _standIns.Runs.ToDictionary(r => r.Key, r => r.Value);

        // export from the training job: the distilled student is not in its ancestry, so the teacher is exported.
        var export = await StartJobAsync(new { action = "export", parent_job_id = trainJob, spec = new Dictionary<string, object> { ["export.opset_version"] = 17 } });
        var exported = await WaitForPipelineAsync(export, "Done");
        Assert.Equal("export", exported["action"]!.GetValue<string>());
        var steps = exported["steps"]!.AsArray();
        // The test images come along, reused, for an action after this one.
        Assert.Equal(["stage-train", "stage-test", "train", "export"], steps.Select(s => s!["step"]!.GetValue<string>()));
        Assert.Equal(trainJob.ToString(), steps[2]!["job_id"]!.GetValue<string>());
        Assert.Equal(id.ToString(), steps[2]!["reused_from_pipeline"]!.GetValue<string>());
        Assert.Equal(JobOf(full, "stage-test"), JobOf(exported, "stage-test"));
        var (_, exportJobs) = await ReadAsync(_host, export);
        var exportJob = Assert.Single(exportJobs);
        Assert.Equal(trainJob, exportJob.ParentJobId);
        var command = JsonSerializer.Deserialize<ExportModel>(exportJob.Command)!;
        var artifacts = _host.Services.GetRequiredService<IArtifactStore>();
        Assert.Equal(artifacts.JobFolder(id, trainJob), command.CheckpointsUri);
        Assert.Equal(PipelineStage.Training, command.SourceStage);
        Assert.Equal(17, JsonNode.Parse(exportJob.Spec)!["export"]!["opset_version"]!.GetValue<int>());

        // gen_trt_engine from that export, then inference from it on the first pipeline's test images (carried along
        // by both actions) and on new test images (staged by the action), and evaluate from the first pipeline's
        // engine with that pipeline's test images.
        var engine = await StartJobAsync(new { action = "gen_trt_engine", parent_job_id = exportJob.Id });
        var engined = await WaitForPipelineAsync(engine, "Done");
        var carried = await WaitForPipelineAsync(await StartJobAsync(new { action = "inference", parent_job_id = JobOf(engined, "engine") }), "Done");
        Assert.Equal(JobOf(full, "stage-test"), JobOf(carried, "stage-test"));
        var inference = await StartJobAsync(new { action = "inference", parent_job_id = JobOf(engined, "engine"), test_data = "/data/more_images.tar" });
        var inferred = await WaitForPipelineAsync(inference, "Done");
        Assert.Equal(["stage-train", "train", "export", "engine", "stage-test", "inference"],
            inferred["steps"]!.AsArray().Select(s => s!["step"]!.GetValue<string>()));
        Assert.Equal("file:///data/more_images.tar", inferred["test_data"]!.GetValue<string>());
        var evaluate = await StartJobAsync(new { action = "evaluate", parent_job_id = JobOf(full, "engine") });
        var evaluated = await WaitForPipelineAsync(evaluate, "Done");
        Assert.Equal(JobOf(full, "stage-test"), JobOf(evaluated, "stage-test"));

        // export from the distillation job exports the student; train from the training job starts from its model.
        var studentExport = await WaitForPipelineAsync(await StartJobAsync(new { action = "export", parent_job_id = distillJob }), "Done");
        var (_, studentJobs) = await ReadAsync(_host, Guid.Parse(studentExport["id"]!.GetValue<string>()));
        Assert.Equal(PipelineStage.Distillation, JsonSerializer.Deserialize<ExportModel>(Assert.Single(studentJobs).Command)!.SourceStage);
        var retrain = await WaitForPipelineAsync(await StartJobAsync(new { action = "train", parent_job_id = trainJob }), "Done");
        var (_, retrainJobs) = await ReadAsync(_host, Guid.Parse(retrain["id"]!.GetValue<string>()));
        var (_, fullJobs) = await ReadAsync(_host, id);
        var teacher = JsonSerializer.Deserialize<TrainingCompleted>(fullJobs.Single(j => j.Id == trainJob).Completion!)!.TeacherBackboneUri;
        Assert.Equal(teacher.ToString(), JsonNode.Parse(Assert.Single(retrainJobs).Spec)!["train"]!["pretrained_model_path"]!.GetValue<string>());

        // Only the actions ran: staging and the first training were reused, not repeated.
        Assert.Equal(runsBefore["staging-Train"], _standIns.RunsOf("staging-Train"));
        Assert.Equal(runsBefore["training"] + 1, _standIns.RunsOf("training"));
        Assert.Equal(runsBefore["export"] + 2, _standIns.RunsOf("export"));
        Assert.Equal(runsBefore["evaluation"] + 1, _standIns.RunsOf("evaluation"));
        Assert.Equal(runsBefore["inference"] + 2, _standIns.RunsOf("inference"));
        Assert.Equal(runsBefore["staging-Test"] + 1, _standIns.RunsOf("staging-Test"));
    }

    [Fact]
    public async Task A_single_action_that_cannot_follow_its_parent_is_refused_naming_the_field_and_nothing_starts()
    {
        var release = new TaskCompletionSource();
        var id = await StartPipelineAsync();
        var done = await WaitForPipelineAsync(id, "Done");
        var count = (await _http.GetFromJsonAsync<JsonArray>("api/v1/pipelines"))!.Count;

        async Task Refused(object request, HttpStatusCode code, string field)
        {
            var answer = await _http.PostAsync("api/v1/jobs", Body(request));
            var text = await answer.Content.ReadAsStringAsync();
            Assert.True(answer.StatusCode == code, $"{answer.StatusCode}: {text}");
            Assert.Contains(field, text);
        }

        await Refused(new { action = "export", parent_job_id = JobOf(done, "stage-train") }, HttpStatusCode.BadRequest, "parent_job_id");
        await Refused(new { action = "inference", parent_job_id = JobOf(done, "export") }, HttpStatusCode.BadRequest, "parent_job_id");
        await Refused(new { action = "quantize", parent_job_id = JobOf(done, "train") }, HttpStatusCode.BadRequest, "action");
        await Refused(new { parent_job_id = JobOf(done, "train") }, HttpStatusCode.BadRequest, "action");
        await Refused(new { action = "export" }, HttpStatusCode.BadRequest, "parent_job_id");
        await Refused(new { action = "export", parent_job_id = JobOf(done, "train"), spec = new Dictionary<string, object> { ["export.opset"] = 17 } },
            HttpStatusCode.BadRequest, "export.opset");
        await Refused(new { action = "evaluate", parent_job_id = JobOf(done, "engine"), test_data = "relative/x" }, HttpStatusCode.BadRequest, "test_data");
        Assert.Equal(count, (await _http.GetFromJsonAsync<JsonArray>("api/v1/pipelines"))!.Count);

        // A parent still running is a conflict.
        _standIns.Before[PipelineStage.Training] = (_, cancellationToken) => release.Task.WaitAsync(cancellationToken);
        var running = await StartPipelineAsync();
        var (_, jobs) = await WaitForAsync(_host, running, (_, jobs) => jobs.Any(j => j.Step == "train" && j.Status == JobStatus.Running));
        await Refused(new { action = "export", parent_job_id = jobs.Job("train").Id }, HttpStatusCode.Conflict, "Running");
        release.SetResult();
        await WaitForPipelineAsync(running, "Done");
    }

    [Fact]
    public async Task A_jobs_log_lines_artifacts_and_metrics_can_be_read_and_downloads_stay_inside_its_folder()
    {
        var id = await StartPipelineAsync();
        var done = await WaitForPipelineAsync(id, "Done");
        var trainJob = JobOf(done, "train");

        JsonObject? logs;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        do
        {
            logs = await _http.GetFromJsonAsync<JsonObject>($"api/v1/jobs/{trainJob}/logs");
            await Task.Delay(200);
        }
        while (!logs!["finished"]!.GetValue<bool>() && DateTime.UtcNow < deadline);
        var lines = logs["lines"]!.AsArray();
        Assert.NotEmpty(lines);
        Assert.Contains(lines, l => l!["message"]!.GetValue<string>().Contains("Training", StringComparison.OrdinalIgnoreCase));
        Assert.True(logs["finished"]!.GetValue<bool>());
        var next = logs["next"]!.GetValue<long>();
        Assert.Empty((await _http.GetFromJsonAsync<JsonObject>($"api/v1/jobs/{trainJob}/logs?after={next}"))!["lines"]!.AsArray());
        Assert.Equal(HttpStatusCode.BadRequest, (await _http.GetAsync($"api/v1/jobs/{trainJob}/logs?limit=0")).StatusCode);

        var artifacts = _host.Services.GetRequiredService<IArtifactStore>();
        var folder = artifacts.JobFolder(id, trainJob);
        await artifacts.PutAsync(folder.Append("metrics.jsonl"), new MemoryStream("{\"epoch\":1,\"loss\":2.5}\n{\"epoch\":2,\"loss\":2.0}\n"u8.ToArray()), default);
        await artifacts.PutAsync(folder.Append("checkpoints/epoch 001.ckpt"), new MemoryStream([1, 2, 3]), default);
        File.WriteAllText(Path.Combine(_folder.Path, "secret.txt"), "outside");

        var listing = await _http.GetFromJsonAsync<JsonObject>($"api/v1/jobs/{trainJob}/artifacts");
        var files = listing!["files"]!.AsArray();
        Assert.Equal(["checkpoints/epoch 001.ckpt", "metrics.jsonl"], files.Select(f => f!["path"]!.GetValue<string>()));
        var download = await _http.GetAsync(files[0]!["url"]!.GetValue<string>().TrimStart('/'));
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal(new byte[] { 1, 2, 3 }, await download.Content.ReadAsByteArrayAsync());

        foreach (var hostile in new[] { "..%2F..%2F..%2Fsecret.txt", "checkpoints/..%2F..%2F..%2F..%2Fsecret.txt", "%2Fetc%2Fpasswd", "checkpoints/" })
        {
            var answer = await _http.GetAsync($"api/v1/jobs/{trainJob}/artifacts/{hostile}");
            Assert.True(answer.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound, $"{hostile}: {answer.StatusCode}");
            Assert.DoesNotContain("outside", await answer.Content.ReadAsStringAsync());
        }

        var metrics = await _http.GetFromJsonAsync<JsonObject>($"api/v1/jobs/{trainJob}/metrics");
        Assert.Equal([2.5, 2.0], metrics!["epochs"]!.AsArray().Select(e => e!["loss"]!.GetValue<double>()));
    }

    [Fact]
    public async Task The_dashboards_calls_refuse_what_they_cannot_answer_and_its_page_is_served()
    {
        var unknown = Guid.NewGuid();
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"api/v1/pipelines/{unknown}/neighbours")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"api/v1/pipelines/{unknown}/images/0")).StatusCode);

        var release = new TaskCompletionSource();
        _standIns.Before[PipelineStage.Inference] = (_, cancellationToken) => release.Task.WaitAsync(cancellationToken);
        var id = await StartPipelineAsync();
        await WaitForAsync(_host, id, (_, jobs) => jobs.Any(j => j.Step == "inference" && j.Status == JobStatus.Running));
        Assert.Equal(HttpStatusCode.Conflict, (await _http.GetAsync($"api/v1/pipelines/{id}/neighbours")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _http.GetAsync($"api/v1/pipelines/{id}/neighbours?queries=0")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _http.GetAsync($"api/v1/pipelines/{id}/images/0?size=4096")).StatusCode);
        release.SetResult();
        await WaitForPipelineAsync(id, "Done");
        // The stand-ins' outputs name files nobody wrote: gone from the store is 404.
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"api/v1/pipelines/{id}/neighbours")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"api/v1/pipelines/{id}/images/0")).StatusCode);
        // A stored plan this version cannot read: the dashboard's calls say so (they once answered 500), the status still reads.
        await UpdatePipelineAsync(EmbeddedSettings(_folder.Path), id, "Plan", "{ not json");
        foreach (var call in new[] { "neighbours", "images/0" })
        {
            var answer = await _http.GetAsync($"api/v1/pipelines/{id}/{call}");
            Assert.Equal(HttpStatusCode.Conflict, answer.StatusCode);
            Assert.Contains("stored plan or a stage's record cannot be read", await answer.Content.ReadAsStringAsync());
        }
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync($"api/v1/pipelines/{id}")).StatusCode);

        var page = await _http.GetAsync("");
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("/dashboard/dashboard.js", await page.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("dashboard/dashboard.js")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("dashboard/..%2Fsecret.txt")).StatusCode);
    }

    [Fact]
    public async Task The_OpenAPI_document_describes_every_endpoint()
    {
        var document = await _http.GetFromJsonAsync<JsonObject>("api/v1/openapi.json");

        var paths = document!["paths"]!.AsObject().Select(p => p.Key).ToList();
        foreach (var path in new[]
        {
            "/api/v1/pipelines", "/api/v1/pipelines/{id}", "/api/v1/pipelines/{id}/cancel", "/api/v1/pipelines/{id}/resume", "/api/v1/jobs",
            "/api/v1/jobs/{id}", "/api/v1/jobs/{id}/logs", "/api/v1/jobs/{id}/artifacts", "/api/v1/jobs/{id}/artifacts/{path}", "/api/v1/jobs/{id}/metrics",
            "/api/v1/pipelines/{id}/neighbours", "/api/v1/pipelines/{id}/images/{index}",
        })
        {
            Assert.Contains(path, paths);
        }
        Assert.NotNull(document["paths"]!["/api/v1/pipelines"]!["post"]);
    }

    [Fact]
    public async Task With_tokens_configured_requests_without_a_valid_one_are_401_and_a_read_token_cannot_change_anything()
    {
        using var folder = new TempDirectory();
        var (host, http) = await StartAsync(folder.Path, new StandIns(), new Dictionary<string, string?>
        {
            ["Api:Tokens:0:Token"] = ControlToken, ["Api:Tokens:0:Access"] = "Control",
            ["Api:Tokens:1:Token"] = ReadToken, ["Api:Tokens:1:Access"] = "Read",
        });
        try
        {
            var start = new { train_data = "file:///data/images_train.tar.gz" };
            async Task<HttpStatusCode> Send(HttpMethod method, string path, string? token, object? body = null)
            {
                using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : Body(body) };
                if (token is not null)
                {
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                }
                var answer = await http.SendAsync(request);
                if (answer.StatusCode == HttpStatusCode.Unauthorized)
                {
                    Assert.Equal("Bearer", answer.Headers.WwwAuthenticate.ToString());
                    Assert.DoesNotContain(ControlToken, await answer.Content.ReadAsStringAsync());
                }
                return answer.StatusCode;
            }

            Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Get, "api/v1/pipelines", null));
            Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Get, "api/v1/pipelines", ControlToken + "x"));
            Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Get, "api/v1/openapi.json", null));
            Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Post, "api/v1/pipelines", null, start));
            Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "api/v1/pipelines", ReadToken));
            Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "", null));
            Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Get, $"api/v1/pipelines/{Guid.NewGuid()}/neighbours", null));
            Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Post, "api/v1/pipelines", ReadToken, start));
            Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Post, "api/v1/jobs", ReadToken, new { action = "export", parent_job_id = Guid.NewGuid() }));
            Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Post, $"api/v1/pipelines/{Guid.NewGuid()}/cancel", ReadToken, new { }));
            var pipelines = host.Services.GetRequiredService<PipelineStore>();
            Assert.Empty(await pipelines.ListAsync(10, default));

            Assert.Equal(HttpStatusCode.Accepted, await Send(HttpMethod.Post, "api/v1/pipelines", ControlToken, start));
        }
        finally
        {
            http.Dispose();
            await host.StopAsync();
            host.Dispose();
        }
    }

    [Fact]
    public async Task An_API_bound_beyond_loopback_without_tokens_refuses_to_start_naming_the_setting()
    {
        using var folder = new TempDirectory();
        var settings = EmbeddedSettings(folder.Path);
        settings["Api:Address"] = "*";
        var host = Build(settings, pipeline => pipeline.AddOrchestrator());
        try
        {
            var exception = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync());
            Assert.Contains("Api:Tokens", exception.Message);
        }
        finally
        {
            host.Dispose();
        }
    }
}
