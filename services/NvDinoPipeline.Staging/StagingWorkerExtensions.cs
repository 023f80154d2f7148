using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;

namespace NvDinoPipeline.Staging;

public static class StagingWorkerExtensions
{
    /// <summary>Hosts the dataset staging worker: <see cref="StageDataset"/> in, <see cref="DatasetStaged"/> out,
    /// with <see cref="StagingOptions"/> bound to the section <c>Staging</c> and validated at start-up.</summary>
    public static PipelineHostBuilder AddStagingWorker(this PipelineHostBuilder pipeline)
    {
        pipeline.Services.AddOptions<StagingOptions>()
            .Bind(pipeline.Configuration.GetSection(StagingOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        return pipeline.AddStageWorker<StageDataset, DatasetStaged, DatasetStagingRunner>(defaultConcurrentJobs: 2);
    }
}
