using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Inference;

namespace NvDinoPipeline.Evaluation;

public static class EvaluationWorkerExtensions
{
    /// <summary>
    /// Hosts the evaluation worker: <see cref="EvaluateModel"/> in, <see cref="ModelEvaluated"/> out. The deployed
    /// model is loaded as inference loads it, with <see cref="InferenceOptions"/> bound to the section <c>Inference</c>.
    /// </summary>
    public static PipelineHostBuilder AddEvaluationWorker(this PipelineHostBuilder pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        pipeline.Services.AddOptions<InferenceOptions>()
            .Bind(pipeline.Configuration.GetSection(InferenceOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        pipeline.Services.TryAddSingleton<IInferenceHardware, NativeInferenceHardware>();
        pipeline.Services.TryAddSingleton<DeployedModelLoader>();
        return pipeline.AddStageWorker<EvaluateModel, ModelEvaluated, EvaluationRunner>(defaultConcurrentJobs: 1);
    }
}
