using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.EngineGeneration.TensorRt;
using NvDinoPipeline.Hosting;

namespace NvDinoPipeline.EngineGeneration;

public static class EngineGenerationWorkerExtensions
{
    /// <summary>
    /// Hosts the engine generation worker: <see cref="GenerateEngine"/> in, <see cref="EngineGenerated"/> out, with
    /// <see cref="EngineGenerationOptions"/> bound to the section <c>EngineGeneration</c> and validated at start-up.
    /// One job at a time by default: a build (or a calibration) already uses every core or the whole GPU.
    /// </summary>
    public static PipelineHostBuilder AddEngineGenerationWorker(this PipelineHostBuilder pipeline)
    {
        pipeline.Services.AddOptions<EngineGenerationOptions>()
            .Bind(pipeline.Configuration.GetSection(EngineGenerationOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        pipeline.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EngineGenerationOptions>, EngineGenerationOptionsValidator>());
        pipeline.Services.TryAddSingleton<TrtexecLocator>();
        pipeline.Services.TryAddSingleton(TimeProvider.System);
        return pipeline.AddStageWorker<GenerateEngine, EngineGenerated, EngineGenerationRunner>(defaultConcurrentJobs: 1);
    }
}
