using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator;

/// <summary>Sends a job's stored command to its stage's queue.</summary>
public sealed class CommandDispatcher(ISendEndpointProvider endpoints, ILogger<CommandDispatcher> logger)
{
    private static readonly Dictionary<string, Type> CommandTypes = typeof(IStageCommand).Assembly.GetTypes()
        .Where(t => typeof(IStageCommand).IsAssignableFrom(t) && !t.IsInterface)
        .ToDictionary(t => t.FullName!);

    public async Task SendAsync(IEnumerable<JobRecord> jobs, CancellationToken cancellationToken)
    {
        foreach (var job in jobs)
        {
            if (!CommandTypes.TryGetValue(job.CommandType, out var type))
            {
                throw new InvalidOperationException($"Job {job.Id} has an unknown command type '{job.CommandType}'.");
            }
            var command = JsonSerializer.Deserialize(job.Command, type)
                ?? throw new InvalidOperationException($"Job {job.Id} has an empty command.");
            var endpoint = await endpoints.GetSendEndpoint(Queues.Address(Queues.ForStage(job.Stage)));
            await endpoint.Send(command, type, cancellationToken);
            logger.LogInformation("Sent {Command} for {Stage} job {JobId} (step {Step}, attempt {Attempt})",
                type.Name, job.Stage, job.Id, job.Step, job.Attempt);
        }
    }
}
