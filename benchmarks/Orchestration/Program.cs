using System.Diagnostics;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Orchestrator;
using NvDinoPipeline.Orchestrator.Tests;
using NvDinoPipeline.Specs;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

// Measures what orchestration adds to a pipeline: stages here finish at once (the test suite's
// stand-in workers), so every millisecond is hand-off: completion published, state machine run and
// saved, next command sent, next job claimed.
//   dotnet run -c Release --project benchmarks/Orchestration [-- pipelines]
// It then runs three more rounds of as many pipelines at once and prints the process's memory after each.
// RabbitMQ figures need NVDINO_TEST_RABBITMQ and NVDINO_TEST_POSTGRES (scripts/services/*.sh env).
var pipelines = args.Length > 0 ? int.Parse(args[0]) : 200;
var spec = SpecLoader.CreateDefault().Defaults.ToJson();
Serilog.Log.Logger = new Serilog.LoggerConfiguration().MinimumLevel.Warning().CreateLogger();

await RunAsync("in-memory + SQLite", folder => EmbeddedSettings(folder));
var rabbit = Environment.GetEnvironmentVariable("NVDINO_TEST_RABBITMQ");
var postgres = Environment.GetEnvironmentVariable("NVDINO_TEST_POSTGRES");
if (rabbit is null || postgres is null)
{
    Console.WriteLine("RabbitMQ: skipped (set NVDINO_TEST_RABBITMQ and NVDINO_TEST_POSTGRES, see scripts/services)");
    return;
}
await RunAsync("RabbitMQ + PostgreSQL", folder =>
{
    var settings = EmbeddedSettings(folder);
    settings["Messaging:Transport"] = "RabbitMq";
    settings["Messaging:RabbitMq"] = rabbit;
    settings["State:Provider"] = "Postgres";
    settings["State:ConnectionString"] = postgres;
    return settings;
});

async Task RunAsync(string name, Func<string, Dictionary<string, string?>> settingsFor)
{
    var folder = Directory.CreateTempSubdirectory("nvdino-bench-").FullName;
    try
    {
        var settings = settingsFor(folder);
        settings["Serilog:MinimumLevel:Default"] = "Warning";
        settings["Serilog:MinimumLevel:Override:NvDinoPipeline"] = "Warning";
        using var host = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(new StandIns()));
        await host.StartAsync();

        // Warm-up: first messages pay for JIT, connections and queue declarations.
        var warm = NewStart(spec);
        await StartPipelineAsync(host, warm);
        await WaitForAsync(host, warm.PipelineId, (p, _) => p.Status == JobStatus.Done);

        var starts = Enumerable.Range(0, pipelines).Select(_ => NewStart(spec)).ToList();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(starts.Select(start => StartPipelineAsync(host, start)));
        var handoffs = new List<double>();
        foreach (var start in starts)
        {
            var (_, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Done, TimeSpan.FromMinutes(10));
            handoffs.AddRange(HandOffs(jobs));
        }
        var seconds = clock.Elapsed.TotalSeconds;

        // Memory over repeated rounds of as many pipelines at once: it must not grow with the pipelines handled.
        var memory = new List<(double Managed, double Rss)> { Memory() };
        for (var round = 0; round < 3; round++)
        {
            var more = Enumerable.Range(0, pipelines).Select(_ => NewStart(spec)).ToList();
            await Task.WhenAll(more.Select(start => StartPipelineAsync(host, start)));
            foreach (var start in more)
            {
                await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Done, TimeSpan.FromMinutes(10));
            }
            memory.Add(Memory());
        }

        // Sequential single pipeline: hand-off with no queueing behind other pipelines.
        var single = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            var start = NewStart(spec);
            await StartPipelineAsync(host, start);
            var (_, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Done);
            single.AddRange(HandOffs(jobs));
        }
        await host.StopAsync();

        Console.WriteLine($"{name}:");
        Console.WriteLine($"  one pipeline at a time: hand-off p50 {Percentile(single, 50):F1} ms, p99 {Percentile(single, 99):F1} ms ({single.Count} hand-offs)");
        Console.WriteLine($"  {pipelines} pipelines at once: {pipelines / seconds:F1} pipelines/s, hand-off p50 {Percentile(handoffs, 50):F1} ms, p99 {Percentile(handoffs, 99):F1} ms");
        Console.WriteLine($"  memory (orchestrator and stand-in workers, one process) after each round of {pipelines} at once, managed heap / RSS: "
            + string.Join(", ", memory.Select(m => $"{m.Managed:F0} / {m.Rss:F0} MiB")));
    }
    finally
    {
        Directory.Delete(folder, recursive: true);
    }
}

static (double Managed, double Rss) Memory()
{
    GC.Collect();
    GC.WaitForPendingFinalizers();
    GC.Collect();
    using var process = Process.GetCurrentProcess();
    return (GC.GetTotalMemory(forceFullCollection: true) / 1048576.0, process.WorkingSet64 / 1048576.0);
}

// From a step's completion to the claim of each step that waited for it.
static IEnumerable<double> HandOffs(List<NvDinoPipeline.State.JobRecord> jobs) =>
    from job in jobs
    where job.ParentJobId is not null && job.StartedAt is not null
    let parent = jobs.Single(j => j.Id == job.ParentJobId)
    where parent.CompletedAt is not null
    select (job.StartedAt!.Value - parent.CompletedAt!.Value).TotalMilliseconds;

static double Percentile(List<double> values, double percentile)
{
    var sorted = values.Order().ToList();
    var index = (int)Math.Ceiling(percentile / 100 * sorted.Count) - 1;
    return sorted[Math.Clamp(index, 0, sorted.Count - 1)];
}
