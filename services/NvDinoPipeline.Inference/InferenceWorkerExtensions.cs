using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Inference.Online;

namespace NvDinoPipeline.Inference;

public static class InferenceWorkerExtensions
{
    /// <summary>
    /// Hosts the inference worker: <see cref="RunInference"/> in, <see cref="InferenceCompleted"/> out, result
    /// batches on the <see cref="EmbeddingsBatch"/> exchange, and on-line <see cref="EmbedImages"/> requests on
    /// the queue <c>embed-images</c>; <see cref="InferenceOptions"/> bound to the section <c>Inference</c> and
    /// validated at start-up.
    /// </summary>
    public static PipelineHostBuilder AddInferenceWorker(this PipelineHostBuilder pipeline)
    {
        pipeline.Services.AddOptions<InferenceOptions>()
            .Bind(pipeline.Configuration.GetSection(InferenceOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        pipeline.Services.TryAddSingleton<IInferenceHardware, NativeInferenceHardware>();
        pipeline.Services.AddSingleton<DeployedModelLoader>();
        pipeline.Services.AddSingleton<OnlineModels>();
        pipeline.AddBus(bus => bus.AddConsumer<EmbedImagesConsumer, EmbedImagesConsumerDefinition>());
        return pipeline.AddStageWorker<RunInference, InferenceCompleted, InferenceRunner>(defaultConcurrentJobs: 1);
    }
}
