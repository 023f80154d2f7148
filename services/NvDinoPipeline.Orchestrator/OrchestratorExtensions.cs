using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Messaging;

namespace NvDinoPipeline.Orchestrator;

public static class OrchestratorExtensions
{
    public static PipelineHostBuilder AddOrchestrator(this PipelineHostBuilder pipeline)
    {
        var services = pipeline.Services;
        services.AddOptions<OrchestratorOptions>().Bind(pipeline.Configuration.GetSection(OrchestratorOptions.SectionName));
        services.AddSingleton<PipelineStateMachine>();
        services.AddSingleton(_ => NvDinoPipeline.Specs.SpecLoader.CreateDefault());
        services.AddSingleton<PipelineRepository>();
        services.AddScoped<CommandDispatcher>();
        pipeline.AddBus(bus => bus.AddConsumer<PipelineConsumer, PipelineConsumerDefinition>());

        var options = pipeline.Configuration.GetSection(OrchestratorOptions.SectionName).Get<OrchestratorOptions>() ?? new OrchestratorOptions();
        var inMemory = pipeline.Configuration.GetValue($"{MessagingOptions.SectionName}:{nameof(MessagingOptions.Transport)}", TransportKind.InMemory)
            == TransportKind.InMemory;
        if (options.RecoverLostMessages ?? inMemory)
        {
            services.AddHostedService<RecoveryService>();
        }
        if (options.ReadControlRequests ?? inMemory)
        {
            services.AddHostedService<ControlInboxService>();
        }
        pipeline.Served.Names.Add("Orchestrator");
        return pipeline;
    }
}
