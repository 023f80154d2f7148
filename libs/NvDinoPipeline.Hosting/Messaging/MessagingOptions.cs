using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Hosting.Messaging;

public enum TransportKind
{
    /// <summary>One process: every worker in the same host (the embedded default).</summary>
    InMemory,
    RabbitMq,
}

public sealed class MessagingOptions : IValidatableObject
{
    public const string SectionName = "Messaging";

    public TransportKind Transport { get; set; } = TransportKind.InMemory;

    /// <summary><c>amqp://user:password@host:port/vhost</c>.</summary>
    public string RabbitMq { get; set; } = "amqp://guest:guest@127.0.0.1:5672/";

    [Range(1, 1000)]
    public int PrefetchCount { get; set; } = 16;

    /// <summary>
    /// Redeliveries of a message that failed with a transient fault (broker, store or state database away) before it
    /// counts as failed; with the default intervals they span about four minutes.
    /// </summary>
    [Range(0, 50)]
    public int RetryLimit { get; set; } = 8;

    public TimeSpan RetryInitialInterval { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan RetryMaxInterval { get; set; } = TimeSpan.FromSeconds(60);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Transport == TransportKind.RabbitMq
            && (!Uri.TryCreate(RabbitMq, UriKind.Absolute, out var uri) || (uri.Scheme != "amqp" && uri.Scheme != "amqps")))
        {
            yield return new ValidationResult(
                $"Messaging:RabbitMq must be an amqp:// or amqps:// URI, got '{RabbitMq}'.", [nameof(RabbitMq)]);
        }
        if (RetryInitialInterval <= TimeSpan.Zero || RetryMaxInterval < RetryInitialInterval)
        {
            yield return new ValidationResult(
                "Messaging:RetryInitialInterval must be positive and not above Messaging:RetryMaxInterval.",
                [nameof(RetryInitialInterval), nameof(RetryMaxInterval)]);
        }
    }
}
