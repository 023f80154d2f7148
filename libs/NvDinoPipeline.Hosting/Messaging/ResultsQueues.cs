using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace NvDinoPipeline.Hosting.Messaging;

/// <summary>
/// The queue a start message names for its pipeline's results. It is declared (durable) when the pipeline is accepted,
/// so that a client connecting any time later, even after the pipeline ended, finds every message waiting.
/// </summary>
public interface IResultsQueues
{
    /// <exception cref="Exception">The broker could not be reached: the start is tried again.</exception>
    Task DeclareAsync(string queue, CancellationToken cancellationToken);
}

public static partial class ResultsQueueNames
{
    /// <summary>Why <paramref name="queue"/> cannot be a results queue; null when it can.</summary>
    public static string? Problem(string queue) =>
        QueueName().IsMatch(queue) && !queue.StartsWith("amq.", StringComparison.Ordinal)
            ? null
            : $"The results queue '{queue}' is not a queue name this product declares: 1 to 128 letters, digits, '.', '_', '-' or ':', not starting with 'amq.'.";

    [GeneratedRegex("^[A-Za-z0-9._:-]{1,128}$")]
    private static partial Regex QueueName();
}

/// <summary>The in-memory transport makes a queue when something is first sent to it.</summary>
internal sealed class InMemoryResultsQueues : IResultsQueues
{
    public Task DeclareAsync(string queue, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Declares the queue as MassTransit's send to <c>queue:name</c> later does (durable, not auto-deleted, no arguments), so
/// that both declarations agree.
/// </summary>
internal sealed class RabbitMqResultsQueues(IOptions<MessagingOptions> options) : IResultsQueues
{
    public async Task DeclareAsync(string queue, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory { Uri = new Uri(options.Value.RabbitMq), ClientProvidedName = "nvdino results queue declaration" };
        await using var connection = await factory.CreateConnectionAsync(cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: null, cancellationToken: cancellationToken);
    }
}
