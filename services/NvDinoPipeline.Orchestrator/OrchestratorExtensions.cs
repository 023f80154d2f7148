using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Hosting;

namespace NvDinoPipeline.Orchestrator;

public static class OrchestratorExtensions
{
    public static PipelineHostBuilder AddOrchestrator(this PipelineHostBuilder pipeline)
    {
        var services = pipeline.Services;
        services.AddOptions<OrchestratorOptions>()
            .Bind(pipeline.Configuration.GetSection(OrchestratorOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<PipelineStateMachine>();
        services.AddSingleton(_ => NvDinoPipeline.Specs.SpecLoader.CreateDefault());
        services.AddHostedService<RecoveryService>();
        pipeline.AddBus(bus => bus.AddConsumer<PipelineConsumer, PipelineConsumerDefinition>());
        pipeline.Served.Names.Add("Orchestrator");
        return pipeline;
    }
}
