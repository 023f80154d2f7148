using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Distillation;

public static class DistillationWorkerExtensions
{
    /// <summary>Hosts the distillation worker: <see cref="DistillModel"/> in, <see cref="DistillationCompleted"/> out, one job at a
    /// time per process by default, with <see cref="DistillationOptions"/> bound to the section <c>Distillation</c> and validated at start-up.</summary>
    public static PipelineHostBuilder AddDistillationWorker(this PipelineHostBuilder pipeline)
    {
        pipeline.Services.AddOptions<DistillationOptions>()
            .Bind(pipeline.Configuration.GetSection(DistillationOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        var device = pipeline.Configuration.GetSection(DistillationOptions.SectionName)[nameof(DistillationOptions.Device)];
        pipeline.Served.GpuCounters.Add(() => TrainingDevice.DataParallelGpus(device));
        return pipeline.AddStageWorker<DistillModel, DistillationCompleted, DistillationRunner>(defaultConcurrentJobs: 1);
    }
}
