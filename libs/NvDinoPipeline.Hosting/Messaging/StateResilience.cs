using Microsoft.Extensions.Logging;
using NvDinoPipeline.State;
using Polly;
using Polly.Retry;

namespace NvDinoPipeline.Hosting.Messaging;

/// <summary>
/// Tries a state-database operation again while the database is briefly away (a restart, a lost connection, a lock
/// held long), with exponential back-off, for up to <paramref name="patience"/>; other errors pass at once.
/// </summary>
public sealed class StateResilience(ILogger logger, TimeSpan patience)
{
    private readonly ResiliencePipeline _pipeline = new ResiliencePipelineBuilder()
        .AddTimeout(patience)
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(StateFailures.IsTransient),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(200),
            MaxDelay = TimeSpan.FromSeconds(10),
            MaxRetryAttempts = int.MaxValue,
            OnRetry = arguments =>
            {
                logger.LogWarning("The state database did not answer ({Error}); trying again in {Delay}",
                    arguments.Outcome.Exception?.Message, arguments.RetryDelay);
                return ValueTask.CompletedTask;
            },
        })
        .Build();

    public ValueTask<T> RunAsync<T>(Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken) =>
        _pipeline.ExecuteAsync(async ct => await operation(ct), cancellationToken);
}
