using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Orchestrator.Api;

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
        services.AddSingleton<AutomlSearches>();
        services.AddSingleton<PipelineStateMachine>();
        services.AddSingleton(_ => NvDinoPipeline.Specs.SpecLoader.CreateDefault());
        services.AddOptions<ApiOptions>()
            .Bind(pipeline.Configuration.GetSection(ApiOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        // Before the heartbeat, which records where the API listens.
        services.AddHostedService<ApiServer>();
        services.AddHostedService<RecoveryService>();
        services.AddHostedService<StateFigures>();
        services.AddSingleton<PipelineChanges>();
        pipeline.AddBus(bus =>
        {
            bus.AddConsumer<PipelineConsumer, PipelineConsumerDefinition>();
            foreach (var stage in StageCatalog.All)
            {
                bus.AddConsumer(typeof(StageCompletedConsumer<>).MakeGenericType(stage.Completion),
                    typeof(StageCompletedConsumerDefinition<>).MakeGenericType(stage.Completion));
            }
        });
        pipeline.Served.Names.Add(ServedStages.Orchestrator);
        return pipeline;
    }
}
