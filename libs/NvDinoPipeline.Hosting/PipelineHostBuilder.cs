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

    /// <summary>Hosts the worker of one stage, the catalog's stage of <typeparamref name="TCommand"/>: its runner behind the shared job machinery.</summary>
    /// <exception cref="ArgumentException">The catalog names another completion for that stage.</exception>
    public PipelineHostBuilder AddStageWorker<TCommand, TCompleted, TRunner>(int defaultConcurrentJobs)
        where TCommand : class, IStageCommand
        where TCompleted : class, IStageCompleted
        where TRunner : class, IStageRunner<TCommand, TCompleted>
    {
        var stage = StageCatalog.ForCommand<TCommand>();
        if (stage.Completion != typeof(TCompleted))
        {
            throw new ArgumentException($"The {stage.Stage} stage completes with {stage.Completion.Name}, not {typeof(TCompleted).Name}.", nameof(TCompleted));
        }
        var retryLimit = Configuration.GetValue($"{MessagingOptions.SectionName}:{nameof(MessagingOptions.RetryLimit)}", new MessagingOptions().RetryLimit);
        Services.AddSingleton(new StageDescriptor<TCommand>(stage.Stage, stage.Queue, defaultConcurrentJobs, retryLimit));
        Services.AddScoped<IStageRunner<TCommand, TCompleted>, TRunner>();
        _registrations.Add(bus => bus.AddConsumer<StageConsumer<TCommand, TCompleted>, StageConsumerDefinition<TCommand, TCompleted>>());
        Served.Names.Add(stage.Stage.ToString());
        return this;
    }

    /// <summary>Adds any other registration with the bus (consumers, request clients).</summary>
    public PipelineHostBuilder AddBus(Action<IBusRegistrationConfigurator> registration)
    {
        _registrations.Add(registration);
        return this;
    }
}
