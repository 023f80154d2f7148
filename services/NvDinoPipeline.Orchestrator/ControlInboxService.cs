using System.Text.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// The embedded host's door for command-line clients: the in-memory transport does not cross
/// processes, so clients leave start, cancel and resume requests in the state database and this
/// service puts them on the bus.
/// </summary>
public sealed class ControlInboxService(
    IDbContextFactory<StateDbContext> contexts,
    StateDatabase database,
    IBus bus,
    IBusControl busControl,
    TimeProvider clock,
    IOptions<OrchestratorOptions> options,
    ILogger<ControlInboxService> logger) : BackgroundService
{
    private static readonly Dictionary<string, Type> ControlTypes = new[] { typeof(StartPipeline), typeof(CancelPipeline), typeof(ResumePipeline) }
        .ToDictionary(t => t.FullName!);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await database.EnsureCreatedAsync(stoppingToken);
        await busControl.WaitUntilReadyAsync(stoppingToken);
        using var timer = new PeriodicTimer(options.Value.ControlPollInterval, clock);
        do
        {
            try
            {
                await DrainAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                logger.LogWarning(exception, "Reading control requests failed; trying again");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var requests = await db.ControlRequests.Where(r => r.ProcessedAt == null).OrderBy(r => r.Id).Take(50).ToListAsync(cancellationToken);
        foreach (var request in requests)
        {
            // Claim first, so two embedded hosts on one database never both act on a request.
            var claimed = await db.ControlRequests.Where(r => r.Id == request.Id && r.ProcessedAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.ProcessedAt, clock.GetUtcNow().UtcDateTime), cancellationToken);
            if (claimed == 0)
            {
                continue;
            }
            if (!ControlTypes.TryGetValue(request.MessageType, out var type) || JsonSerializer.Deserialize(request.Message, type) is not { } message)
            {
                logger.LogWarning("Control request {RequestId} of unknown type {MessageType} dropped", request.Id, request.MessageType);
                continue;
            }
            var endpoint = await bus.GetSendEndpoint(Queues.Address(Queues.Orchestrator));
            await endpoint.Send(message, type, cancellationToken);
        }
    }
}
