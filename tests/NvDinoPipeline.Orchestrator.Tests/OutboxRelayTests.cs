using System.Diagnostics;
using System.Reflection;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.State;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>What the outbox relay does when the broker takes a message and never confirms it.</summary>
public sealed class OutboxRelayTests : IAsyncLifetime
{
    private readonly TempDirectory _folder = new("nvdino-relay");
    private readonly ServiceProvider _state;

    public OutboxRelayTests()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["State:Provider"] = "Sqlite",
            ["State:ConnectionString"] = $"Data Source={_folder.Combine("state.db")}",
        }).Build();
        _state = new ServiceCollection().AddPipelineState(configuration).BuildServiceProvider();
    }

    public Task InitializeAsync() => Task.CompletedTask;

    // xUnit v2 calls IAsyncLifetime on a test class, never IAsyncDisposable: this folder was left behind by every run.
    public async Task DisposeAsync()
    {
        await _state.DisposeAsync();
        _folder.Dispose();
    }

    // A restarting RabbitMQ may close a channel without answering the confirms it owed: a relay (and the stage that
    // waits for it to deliver its completion) once waited for them forever, and the pipeline stood still.
    [Fact]
    public async Task A_message_the_broker_never_confirms_is_given_back_for_a_later_delivery_within_the_send_timeout()
    {
        await _state.GetRequiredService<StateDatabase>().EnsureCreatedAsync(CancellationToken.None);
        var store = _state.GetRequiredService<OutboxStore>();
        var bus = SilentBroker.Create();
        var relay = new OutboxRelay(store, (IBus)bus, bus, new WorkerIdentity(), TimeProvider.System,
            Options.Create(new OutboxOptions { SendTimeout = TimeSpan.FromMilliseconds(500) }), NullLogger<OutboxRelay>.Instance);
        var pipelineId = Guid.NewGuid();
        var row = relay.Publish(new PipelineStarted { PipelineId = pipelineId, Stages = [PipelineStage.Staging], StartedAt = DateTimeOffset.UtcNow }, pipelineId);
        await store.AddAsync([row], CancellationToken.None);

        var clock = Stopwatch.StartNew();
        await relay.DeliverAsync([row], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var elapsed = clock.Elapsed;

        Assert.Equal(1, SilentBroker.Publishes);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"delivery returned after {elapsed}");
        var (waiting, _) = await store.BacklogAsync(CancellationToken.None);
        Assert.Equal(1, waiting);
        await Task.Delay(TimeSpan.FromSeconds(1.2));
        var again = await store.ClaimAsync("another relay", TimeSpan.FromSeconds(30), 10, CancellationToken.None);
        var taken = Assert.Single(again);
        Assert.Equal(row.MessageId, taken.MessageId);
        Assert.Contains("did not confirm", taken.LastError);
    }

    /// <summary>A bus that is healthy and takes every publish, and never confirms one until it is given up.</summary>
    public class SilentBroker : DispatchProxy
    {
        public static int Publishes;

        public static IBusControl Create()
        {
            Publishes = 0;
            return DispatchProxy.Create<IBusControl, SilentBroker>();
        }

        protected override object? Invoke(MethodInfo? method, object?[]? args)
        {
            switch (method?.Name)
            {
                case nameof(IBusControl.CheckHealth):
                    return BusHealthResult.Healthy("silent", new Dictionary<string, EndpointHealthResult>());
                case nameof(IPublishEndpoint.Publish) when method.ReturnType == typeof(Task):
                    Interlocked.Increment(ref Publishes);
                    var token = args!.OfType<CancellationToken>().LastOrDefault();
                    return Task.Delay(Timeout.Infinite, token);
                default:
                    throw new NotSupportedException($"{method?.Name} is not part of this test");
            }
        }
    }
}
