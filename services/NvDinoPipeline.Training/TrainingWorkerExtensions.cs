using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Training;

public static class TrainingWorkerExtensions
{
    /// <summary>Hosts the training worker: <see cref="TrainModel"/> in, <see cref="TrainingCompleted"/> out, one job at a
    /// time per process by default, with <see cref="TrainingOptions"/> bound to the section <c>Training</c> and validated at start-up.</summary>
    public static PipelineHostBuilder AddTrainingWorker(this PipelineHostBuilder pipeline)
    {
        pipeline.Services.AddOptions<TrainingOptions>()
            .Bind(pipeline.Configuration.GetSection(TrainingOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        var device = pipeline.Configuration.GetSection(TrainingOptions.SectionName)[nameof(TrainingOptions.Device)];
        pipeline.Served.GpuCounters.Add(() => TrainingDevice.DataParallelGpus(device));
        return pipeline.AddStageWorker<TrainModel, TrainingCompleted, TrainingRunner>(defaultConcurrentJobs: 1);
    }
}
