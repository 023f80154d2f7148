using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>The orchestrator's <c>/metrics</c> counts the state database's pipelines and jobs at each scrape.</summary>
public sealed class StateMetricsTests : IDisposable
{
    private readonly TempDirectory _folder = new("nvdino-state-metrics");
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };

    public void Dispose()
    {
        _http.Dispose();
        _folder.Dispose();
    }

    [Fact]
    public async Task A_finished_pipeline_is_counted_with_each_of_its_jobs_by_stage_and_status()
    {
        var port = EmbeddedHosts.FreePort();
        var settings = LiveWorkerSettings(EmbeddedSettings(_folder.Path));
        settings["Health:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var standIns = new StandIns();
        using var host = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        try
        {
            var before = await ScrapeAsync(port);
            var start = NewStart(SpecLoader.CreateDefault().Defaults.ToJson());
            await StartPipelineAsync(host, start);
            var (_, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Done);
            var after = await ScrapeAsync(port);

            Assert.Equal(1, Value(after, "nvdino_state_database_up"));
            Assert.Equal(0, Value(before, "nvdino_pipelines", ("status", "Done")));
            Assert.Equal(1, Value(after, "nvdino_pipelines", ("status", "Done")));
            Assert.Equal(0, Value(after, "nvdino_pipelines", ("status", "Running")));
            foreach (var stage in Enum.GetValues<PipelineStage>())
            {
                Assert.Equal(jobs.Count(j => j.Stage == stage), Value(after, "nvdino_jobs", ("stage", stage.ToString()), ("status", "Done")));
                Assert.Equal(0, Value(after, "nvdino_jobs", ("stage", stage.ToString()), ("status", "Error")));
            }
            Assert.Equal(2, Value(after, "nvdino_jobs", ("stage", "Staging"), ("status", "Done")));
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private async Task<IReadOnlyList<PrometheusSample>> ScrapeAsync(int port)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                return PrometheusText.Parse(await _http.GetStringAsync($"http://127.0.0.1:{port}/metrics")).Samples;
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    private static double Value(IReadOnlyList<PrometheusSample> samples, string name, params (string Key, string Value)[] labels) =>
        samples.Single(s => s.Name == name && s.Labels.Count == labels.Length && labels.All(l => s.Labels.GetValueOrDefault(l.Key) == l.Value)).Value;
}
