using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Hosting.Workers;

namespace NvDinoPipeline.Hosting;

/// <summary>Collects what a process hosts (stage workers, the orchestrator) before the bus is built.</summary>
public sealed class PipelineHostBuilder(IHostApplicationBuilder builder)
{
    private readonly List<Action<IBusRegistrationConfigurator>> _registrations = [];

    public IServiceCollection Services => builder.Services;

    public IConfiguration Configuration => builder.Configuration;

    public ServedStages Served { get; } = new();

    internal IReadOnlyList<Action<IBusRegistrationConfigurator>> Registrations => _registrations;

    /// <summary>Hosts the worker of one stage: its runner behind the shared job machinery.</summary>
    public PipelineHostBuilder AddStageWorker<TCommand, TCompleted, TRunner>(PipelineStage stage, int defaultConcurrentJobs)
        where TCommand : class, IStageCommand
        where TCompleted : class, IStageMessage
        where TRunner : class, IStageRunner<TCommand, TCompleted>
    {
        var retryLimit = Configuration.GetValue($"{MessagingOptions.SectionName}:{nameof(MessagingOptions.RetryLimit)}", new MessagingOptions().RetryLimit);
        Services.AddSingleton(new StageDescriptor<TCommand>(stage, Queues.ForStage(stage), defaultConcurrentJobs, retryLimit));
        Services.AddScoped<IStageRunner<TCommand, TCompleted>, TRunner>();
        _registrations.Add(bus => bus.AddConsumer<StageConsumer<TCommand, TCompleted>, StageConsumerDefinition<TCommand, TCompleted>>());
        Served.Names.Add(stage.ToString());
        return this;
    }

    /// <summary>Adds any other registration with the bus (consumers, request clients).</summary>
    public PipelineHostBuilder AddBus(Action<IBusRegistrationConfigurator> registration)
    {
        _registrations.Add(registration);
        return this;
    }
}
