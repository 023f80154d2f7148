using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.State;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>Two hosts in one process keep their own loggers: one host's stop neither silences the other nor takes its job lines.</summary>
public sealed class JobLogIsolationTests
{
    [Fact]
    public async Task A_host_built_and_stopped_beside_another_leaves_the_others_job_log_lines_in_its_own_database()
    {
        using var first = new TempDirectory();
        using var second = new TempDirectory();
        var standIns = new StandIns();
        using var host = Build(EmbeddedSettings(first.Path), pipeline => pipeline.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        try
        {
            // Built after the first, so it would own a process-wide logger; stopped, it would close that logger for both.
            using (var other = Build(EmbeddedSettings(second.Path), pipeline => pipeline.AddOrchestrator().AddStandInWorkers(new StandIns())))
            {
                await other.StartAsync();
                await other.StopAsync();
            }

            var start = NewStart("{}");
            await StartPipelineAsync(host, start);
            var (_, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Done);
            var train = jobs.Single(j => j.Step == "train");
            var logs = host.Services.GetRequiredService<JobLogStore>();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            List<JobLogRecord> lines;
            while ((lines = await logs.ReadAsync(train.Id, 0, 100, CancellationToken.None)).Count == 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
            Assert.NotEmpty(lines);
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
