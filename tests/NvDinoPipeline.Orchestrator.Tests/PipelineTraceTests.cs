using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Observability;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Testing;
using OpenTelemetry;
using OpenTelemetry.Trace;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>One pipeline is one trace: the start's span and every stage job's span, whichever worker runs it.</summary>
public sealed class PipelineTraceTests : IDisposable
{
    private readonly TempDirectory _folder = new("nvdino-traces");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task A_pipeline_and_all_its_stage_jobs_form_one_trace_rooted_at_its_start()
    {
        var exported = new List<Activity>();
        var standIns = new StandIns();
        using var host = EmbeddedHosts.Build(LiveWorkerSettings(EmbeddedSettings(_folder.Path)),
            p => p.AddOrchestrator().AddStandInWorkers(standIns),
            services => services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(exported)));
        await host.StartAsync();
        var first = NewStart(SpecLoader.CreateDefault().Defaults.ToJson());
        var second = NewStart(SpecLoader.CreateDefault().Defaults.ToJson());
        await StartPipelineAsync(host, first);
        await StartPipelineAsync(host, second);
        var (_, jobs) = await WaitForAsync(host, first.PipelineId, (p, _) => p.Status == JobStatus.Done);
        await WaitForAsync(host, second.PipelineId, (p, _) => p.Status == JobStatus.Done);
        host.Services.GetRequiredService<TracerProvider>().ForceFlush();
        await host.StopAsync();

        Activity[] Of(Guid pipelineId) =>
            exported.Where(a => a.Source.Name == PipelineTracing.SourceName && (string?)a.GetTagItem("nvdino.pipeline.id") == pipelineId.ToString()).ToArray();
        var spans = Of(first.PipelineId);
        var root = Assert.Single(spans, s => s.OperationName == "pipeline");
        var stages = spans.Where(s => s.OperationName.StartsWith("stage ", StringComparison.Ordinal)).ToList();
        Assert.Equal(jobs.Count, stages.Count);
        Assert.Equal(jobs.Select(j => j.Id.ToString()).Order(), stages.Select(s => (string)s.GetTagItem("nvdino.job.id")!).Order());
        Assert.All(stages, s =>
        {
            Assert.Equal(root.TraceId, s.TraceId);
            Assert.Equal(root.SpanId, s.ParentSpanId);
            Assert.Equal("done", s.GetTagItem("nvdino.outcome"));
        });
        Assert.Equal(default, root.ParentSpanId);
        // The other pipeline is a trace of its own.
        Assert.All(Of(second.PipelineId), s => Assert.NotEqual(root.TraceId, s.TraceId));
        Assert.Equal(1 + jobs.Count, Of(second.PipelineId).Length);
    }
}
