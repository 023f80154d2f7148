using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Hosting.Messaging;

/// <summary>How the outbox relay of every process delivers the messages saved with state changes (section <c>Outbox</c>).</summary>
public sealed class OutboxOptions
{
    public const string SectionName = "Outbox";

    /// <summary>
    /// How often undelivered messages are looked for: those another process saved (a command-line client's request on
    /// the embedded default) or that a relay could not deliver (a broker outage, a process that died). A process
    /// delivers what it saves itself at once.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a relay holds the messages it is delivering before another relay may take them over.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan LockDuration { get; set; } = TimeSpan.FromSeconds(30);

    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 200;

    /// <summary>
    /// Longest wait for the broker to confirm one message; an unconfirmed message is given back and sent again. A
    /// broker that restarts may close a channel without answering the confirms it owed, which would otherwise be
    /// waited for forever. Shorter than <see cref="LockDuration"/>.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan SendTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Delivered messages and inbox records are kept this long (the window in which a redelivery is recognised).</summary>
    [Range(typeof(TimeSpan), "00:01:00", "365.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);
}
