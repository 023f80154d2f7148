using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Health;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>The endpoints container health checks and Kubernetes probes call: <c>/healthz</c> and <c>/readyz</c>.</summary>
public sealed class HealthEndpointTests : IDisposable
{
    private readonly TempDirectory _folder = new("nvdino-health");
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };

    public void Dispose()
    {
        _http.Dispose();
        _folder.Dispose();
    }

    private Dictionary<string, string?> Settings(int port)
    {
        var settings = TestHosts.EmbeddedSettings(_folder.Path);
        settings["Health:Port"] = port.ToString();
        settings["Health:Address"] = "127.0.0.1";
        return settings;
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(int port, string path)
    {
        using var response = await _http.GetAsync($"http://127.0.0.1:{port}{path}");
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task A_running_worker_is_alive_and_ready_once_its_bus_and_state_database_answer()
    {
        var port = TestHosts.FreePort();
        using var host = TestHosts.Build(Settings(port), _ => { });
        await host.StartAsync();

        var (liveStatus, live) = await GetAsync(port, "/healthz");
        var (readyStatus, ready) = await TestHosts.WaitForAsync(
            () => GetAsync(port, "/readyz"), r => r.Status == HttpStatusCode.OK, TimeSpan.FromSeconds(20), "/readyz answering 200");
        var (missingStatus, _) = await GetAsync(port, "/nothing-here");
        await host.StopAsync();

        Assert.Equal(HttpStatusCode.OK, liveStatus);
        Assert.Equal("Healthy", live.GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, readyStatus);
        var checks = ready.GetProperty("checks");
        Assert.Equal("Healthy", checks.GetProperty("state-database").GetProperty("status").GetString());
        Assert.Contains(checks.EnumerateObject(), check => check.Name.Contains("masstransit", StringComparison.OrdinalIgnoreCase)
            && check.Value.GetProperty("status").GetString() == "Healthy");
        Assert.Equal(HttpStatusCode.NotFound, missingStatus);
    }

    [Fact]
    public async Task Readiness_fails_naming_the_state_database_but_not_its_error_when_it_does_not_answer_while_liveness_stays_up()
    {
        var port = TestHosts.FreePort();
        var databasePort = TestHosts.FreePort();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["State:Provider"] = "Postgres",
            ["State:ConnectionString"] = $"Host=127.0.0.1;Port={databasePort};Username=nvdino;Password=nvdino;Database=nvdino;Timeout=3",
            ["Health:Port"] = port.ToString(),
            ["Health:Address"] = "127.0.0.1",
        });
        builder.Services.AddPipelineState(builder.Configuration);
        builder.AddPipelineHealth();
        using var host = builder.Build();
        await host.StartAsync();

        var (liveStatus, _) = await GetAsync(port, "/healthz");
        var (readyStatus, ready) = await GetAsync(port, "/readyz");
        await host.StopAsync();

        Assert.Equal(HttpStatusCode.OK, liveStatus);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, readyStatus);
        Assert.Equal("Unhealthy", ready.GetProperty("status").GetString());
        var database = ready.GetProperty("checks").GetProperty("state-database");
        Assert.Equal("Unhealthy", database.GetProperty("status").GetString());
        // What the failure was (an address, a driver message) is for the log, not for whoever asks.
        Assert.Equal(["status"], database.EnumerateObject().Select(p => p.Name));
        Assert.DoesNotContain(databasePort.ToString(), ready.GetRawText());
    }

    [Fact]
    public async Task Readiness_fails_while_the_broker_is_unreachable()
    {
        var port = TestHosts.FreePort();
        var settings = Settings(port);
        settings["Messaging:Transport"] = "RabbitMq";
        settings["Messaging:RabbitMq"] = $"amqp://guest:guest@127.0.0.1:{TestHosts.FreePort()}/";
        using var host = TestHosts.Build(settings, _ => { });
        await host.StartAsync();

        var (readyStatus, ready) = await GetAsync(port, "/readyz");
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await host.StopAsync(stop.Token);
        }

        Assert.Equal(HttpStatusCode.ServiceUnavailable, readyStatus);
        var checks = ready.GetProperty("checks");
        Assert.Equal("Healthy", checks.GetProperty("state-database").GetProperty("status").GetString());
        Assert.Contains(checks.EnumerateObject(), check => check.Name.Contains("masstransit", StringComparison.OrdinalIgnoreCase)
            && check.Value.GetProperty("status").GetString() == "Unhealthy");
    }

    [Fact]
    public async Task A_stopping_process_is_unready_at_once_but_alive_until_it_has_stopped()
    {
        var port = TestHosts.FreePort();
        var blocker = new StopBlocker();
        using var host = TestHosts.Build(Settings(port), p => p.Services.AddHostedService(_ => blocker));
        await host.StartAsync();
        await TestHosts.WaitForAsync(() => GetAsync(port, "/readyz"), r => r.Status == HttpStatusCode.OK,
            TimeSpan.FromSeconds(20), "/readyz answering 200");

        var stopping = host.StopAsync();
        await blocker.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var (readyStatus, ready) = await GetAsync(port, "/readyz");
        var (liveStatus, _) = await GetAsync(port, "/healthz");
        blocker.Release.SetResult();
        await stopping;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, readyStatus);
        Assert.Equal("The process is stopping", ready.GetProperty("description").GetString());
        Assert.Equal(HttpStatusCode.OK, liveStatus);
        await Assert.ThrowsAsync<HttpRequestException>(() => _http.GetAsync($"http://127.0.0.1:{port}/healthz"));
    }

    // A container orchestrator probes a process while it starts. The endpoints once ran on HttpListener, whose start
    // on Linux throws (and the process died) when a connection arrives while it sets up its socket.
    [Fact]
    public async Task A_process_probed_while_its_endpoints_start_starts_and_answers()
    {
        for (var round = 0; round < 25; round++)
        {
            var port = TestHosts.FreePort();
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Configuration["Health:Port"] = port.ToString();
            builder.AddPipelineHealth();
            using var host = builder.Build();
            using var stop = new CancellationTokenSource();
            var connected = 0;
            var probes = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    using var client = new TcpClient();
                    try
                    {
                        await client.ConnectAsync(IPAddress.Loopback, port);
                        Interlocked.Increment(ref connected);
                    }
                    catch (SocketException)
                    {
                    }
                }
            });
            await Task.Delay(20);

            await host.StartAsync();
            var (status, _) = await GetAsync(port, "/healthz");
            await TestHosts.WaitForAsync(() => Task.FromResult(Volatile.Read(ref connected)), n => n > 0, TimeSpan.FromSeconds(10), "a probe connecting");
            await stop.CancelAsync();
            await probes;
            await host.StopAsync();

            Assert.Equal(HttpStatusCode.OK, status);
        }
    }

    [Fact]
    public async Task By_default_the_endpoints_listen_on_loopback_only()
    {
        var port = TestHosts.FreePort();
        var settings = TestHosts.EmbeddedSettings(_folder.Path);
        settings["Health:Port"] = port.ToString();
        using var host = TestHosts.Build(settings, _ => { });
        await host.StartAsync();

        var (status, _) = await GetAsync(port, "/healthz");
        var elsewhere = new List<IPAddress>();
        foreach (var address in System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(a => a.Address)
            .Where(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a)))
        {
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(address, port);
                elsewhere.Add(address);
            }
            catch (SocketException)
            {
            }
        }
        await host.StopAsync();

        Assert.Equal("http://127.0.0.1:" + port + "/", host.Services.GetRequiredService<IOptions<HealthOptions>>().Value.Prefix);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Empty(elsewhere);
    }

    [Fact]
    public async Task A_port_already_in_use_stops_the_start_with_an_error_naming_it()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        using var host = TestHosts.Build(Settings(port), _ => { });

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());

        Assert.Contains($"Health:Port {port}", error.Message);
        Assert.Contains("cannot listen", error.Message);
    }

    [Fact]
    public async Task Rejects_a_listen_address_that_is_neither_a_host_name_nor_an_IP_address()
    {
        var settings = Settings(TestHosts.FreePort());
        settings["Health:Address"] = "every interface";
        using var host = TestHosts.Build(settings, _ => { });

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Health:Address must be '*'", error.Message);
        Assert.Contains("'every interface'", error.Message);
    }

    [Fact]
    public void The_shutdown_timeout_comes_from_configuration()
    {
        var settings = TestHosts.EmbeddedSettings(_folder.Path);
        settings["Shutdown:Timeout"] = "00:09:00";
        using var host = TestHosts.Build(settings, _ => { });

        Assert.Equal(TimeSpan.FromMinutes(9), host.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout);
    }

    /// <summary>A hosted service that holds the host in its stopping phase until released.</summary>
    private sealed class StopBlocker : IHostedService
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            Entered.TrySetResult();
            await Release.Task.WaitAsync(cancellationToken);
        }
    }

    [Fact]
    public async Task Metrics_count_each_stage_job_by_its_outcome_in_prometheus_text_format()
    {
        var port = TestHosts.FreePort();
        using var host = TestHosts.Build(Settings(port), pipeline => pipeline.AddStageWorker<EvaluateModel, ModelEvaluated, ScriptedEvaluation>(1));
        await host.StartAsync();
        try
        {
            var store = host.Services.GetRequiredService<IArtifactStore>();
            var endpoint = await host.Services.GetRequiredService<MassTransit.IBus>().GetSendEndpoint(
                NvDinoPipeline.Hosting.Messaging.Queues.Address(StageCatalog.For(PipelineStage.Evaluation).Queue));
            var jobs = new List<Guid>();
            foreach (var target in (string[])["score", "fail", "score"])
            {
                var (pipelineId, jobId) = (Guid.NewGuid(), Guid.NewGuid());
                jobs.Add(jobId);
                await endpoint.Send(new EvaluateModel
                {
                    PipelineId = pipelineId,
                    JobId = jobId,
                    Spec = "{}",
                    OutputUri = store.JobFolder(pipelineId, jobId),
                    DeployArtifactUri = new Uri("file:///nowhere/model.onnx"),
                    Target = target,
                    ModelMetadataUri = new Uri("file:///nowhere/model.json"),
                    TestDatasetUri = new Uri("file:///nowhere/test/"),
                    TrainDatasetUri = new Uri("file:///nowhere/train/"),
                });
            }
            foreach (var jobId in jobs)
                Assert.NotNull(await host.WaitForJobAsync(jobId, TimeSpan.FromSeconds(30)));

            using var response = await _http.GetAsync($"http://127.0.0.1:{port}/metrics");
            var text = await response.Content.ReadAsStringAsync();
            var (types, samples) = PrometheusText.Parse(text);
            double Value(string name, params (string Key, string Value)[] labels) => samples.Single(s => s.Name == name
                && labels.All(l => s.Labels.GetValueOrDefault(l.Key) == l.Value) && s.Labels.Count == labels.Length).Value;

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
            Assert.Equal("counter", types["nvdino_stage_jobs_total"]);
            Assert.Equal("histogram", types["nvdino_stage_job_duration_seconds"]);
            Assert.Equal("gauge", types["nvdino_stage_jobs_running"]);
            Assert.Equal(2, Value("nvdino_stage_jobs_total", ("stage", "Evaluation"), ("outcome", "done")));
            Assert.Equal(1, Value("nvdino_stage_jobs_total", ("stage", "Evaluation"), ("outcome", "failed")));
            Assert.Equal(2 * ScriptedEvaluation.TestImages, Value("nvdino_stage_images_total", ("stage", "Evaluation")));
            Assert.Equal(0, Value("nvdino_stage_jobs_running", ("stage", "Evaluation")));
            Assert.Equal(2, Value("nvdino_stage_job_duration_seconds_count", ("stage", "Evaluation"), ("outcome", "done")));
            var buckets = samples.Where(s => s.Name == "nvdino_stage_job_duration_seconds_bucket" && s.Labels["outcome"] == "done")
                .OrderBy(s => double.Parse(s.Labels["le"] == "+Inf" ? "Infinity" : s.Labels["le"], System.Globalization.CultureInfo.InvariantCulture))
                .Select(s => s.Value).ToList();
            Assert.Equal(buckets.Order(), buckets);
            Assert.Equal(2, buckets[^1]);
            Assert.Equal(12.5, Value("nvdino_stage_images_per_second", ("stage", "Evaluation")));
            Assert.Equal(3, Value("nvdino_stage_queue_wait_seconds_count", ("stage", "Evaluation")));
            Assert.InRange(Value("nvdino_stage_queue_wait_seconds_sum", ("stage", "Evaluation")), 0, 3 * 30);
            Assert.Equal("gauge", types["nvdino_worker_heartbeat_timestamp_seconds"]);
            Assert.InRange(Value("nvdino_worker_heartbeat_timestamp_seconds"), DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(),
                DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeSeconds());
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task With_a_metrics_token_metrics_need_it_as_a_bearer_token_and_the_probes_stay_open()
    {
        const string token = "metrics-token-0123456789abcdef";
        var port = TestHosts.FreePort();
        var settings = Settings(port);
        settings["Health:MetricsToken"] = token;
        using var host = TestHosts.Build(settings, _ => { });
        await host.StartAsync();
        try
        {
            async Task<HttpStatusCode> MetricsAsync(string? authorization)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/metrics");
                if (authorization is not null)
                    request.Headers.TryAddWithoutValidation("Authorization", authorization);
                using var response = await _http.SendAsync(request);
                return response.StatusCode;
            }

            Assert.Equal(HttpStatusCode.Unauthorized, await MetricsAsync(null));
            Assert.Equal(HttpStatusCode.Unauthorized, await MetricsAsync("Bearer " + token + "x"));
            Assert.Equal(HttpStatusCode.Unauthorized, await MetricsAsync("Basic " + token));
            Assert.Equal(HttpStatusCode.OK, await MetricsAsync("Bearer " + token));
            Assert.Equal(HttpStatusCode.OK, (await GetAsync(port, "/healthz")).Status);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public void A_short_metrics_token_is_refused_at_start_without_repeating_it()
    {
        var settings = Settings(TestHosts.FreePort());
        settings["Health:MetricsToken"] = "short-secret";
        using var host = TestHosts.Build(settings, _ => { });

        var refused = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<HealthOptions>>().Value);

        Assert.Contains("Health:MetricsToken", refused.Message);
        Assert.DoesNotContain("short-secret", refused.Message);
    }

    /// <summary>An evaluation stand-in: "score" finishes with figures, "fail" refuses its input.</summary>
    private sealed class ScriptedEvaluation : IStageRunner<EvaluateModel, ModelEvaluated>
    {
        public const int TestImages = 7;

        public Task<StageResult<ModelEvaluated>> RunAsync(EvaluateModel command, StageContext context, CancellationToken cancellationToken)
        {
            if (command.Target == "fail")
                throw new StageInputException("the scripted evaluation refuses this input");
            var completed = new ModelEvaluated
            {
                PipelineId = command.PipelineId,
                JobId = command.JobId,
                EvaluationUri = context.Output("evaluation.json"),
                Evaluated = true,
                KnnTop1 = 0.5,
            };
            return Task.FromResult(new StageResult<ModelEvaluated>(completed, new Dictionary<string, Uri>(),
                new Dictionary<string, double> { ["test_images"] = TestImages, ["images_per_second"] = 12.5 }));
        }
    }
}
