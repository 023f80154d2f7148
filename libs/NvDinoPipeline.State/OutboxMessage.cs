using System.Text.Json;

namespace NvDinoPipeline.State;

/// <summary>
/// A message a state change implies, written in the same transaction as that change and delivered by a relay
/// afterwards: a change is never saved without its messages, nor a message sent for a change that was not saved.
/// </summary>
public sealed class OutboxMessage
{
    public long Id { get; init; }

    /// <summary>The id the message travels with; every delivery of this row carries the same one.</summary>
    public required Guid MessageId { get; init; }

    /// <summary>The queue a command is sent to; null when the message is published to its subscribers.</summary>
    public string? Destination { get; init; }

    /// <summary>The message's CLR type (full name), to read <see cref="Body"/> back.</summary>
    public required string MessageType { get; init; }

    public required string Body { get; init; }

    /// <summary>The content type the message is sent in (<c>application/json</c> for plain JSON); null is the bus default.</summary>
    public string? ContentType { get; init; }

    public Guid? PipelineId { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime? SentAt { get; set; }

    /// <summary>The relay delivering this row right now; others leave it alone until <see cref="LockedUntil"/>.</summary>
    public string? LockedBy { get; set; }

    public DateTime? LockedUntil { get; set; }

    public int Attempts { get; set; }

    public string? LastError { get; set; }

    /// <summary>A message for <paramref name="queue"/>, serialized as its runtime type, sent in <paramref name="contentType"/>.</summary>
    public static OutboxMessage Send(string queue, object message, Guid? pipelineId, DateTime now, string? contentType = null) =>
        Create(queue, message.GetType().FullName!, JsonSerializer.Serialize(message, message.GetType()), pipelineId, now, contentType);

    /// <summary>A command already stored as JSON (a job's command), for <paramref name="queue"/>.</summary>
    public static OutboxMessage Send(string queue, string messageType, string body, Guid? pipelineId, DateTime now) =>
        Create(queue, messageType, body, pipelineId, now);

    /// <summary>An event for whoever subscribes to its type.</summary>
    public static OutboxMessage Publish(object message, Guid? pipelineId, DateTime now) =>
        Create(null, message.GetType().FullName!, JsonSerializer.Serialize(message, message.GetType()), pipelineId, now);

    private static OutboxMessage Create(string? destination, string type, string body, Guid? pipelineId, DateTime now, string? contentType = null) => new()
    {
        ContentType = contentType,
        MessageId = Guid.CreateVersion7(),
        Destination = destination,
        MessageType = type,
        Body = body,
        PipelineId = pipelineId,
        CreatedAt = now,
    };
}

/// <summary>A message a consumer has handled: a second delivery of it changes nothing.</summary>
public sealed class InboxMessage
{
    public required Guid MessageId { get; init; }

    /// <summary>Who handled it (the consumer's queue): one message may be handled once by each of its consumers.</summary>
    public required string Consumer { get; init; }

    public DateTime HandledAt { get; init; }
}

/// <summary>The message being handled, for the inbox: its id and the consumer handling it.</summary>
public sealed record HandledMessage(Guid MessageId, string Consumer);
