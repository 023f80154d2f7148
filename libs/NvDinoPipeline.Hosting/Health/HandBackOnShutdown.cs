using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace NvDinoPipeline.Hosting.Health;

/// <summary>
/// A message whose handling was canceled because this process is stopping goes back to its queue
/// (the transport's negative acknowledgement with requeue) instead of to the error queue: a worker
/// scaled in or rolled over mid-job hands the command to the next worker with its job, which the
/// stage machinery has already set back to Pending.
/// </summary>
public sealed class HandBackOnShutdown(IHostApplicationLifetime lifetime, ILogger<HandBackOnShutdown> logger) : IConfigureReceiveEndpoint
{
    public void Configure(string name, IReceiveEndpointConfigurator configurator) =>
        configurator.ConfigureError(error => error.UseFilter(new RequeueWhenStoppingFilter(name, lifetime, logger)));

    private sealed class RequeueWhenStoppingFilter(string queue, IHostApplicationLifetime lifetime, ILogger logger)
        : IFilter<ExceptionReceiveContext>
    {
        public Task Send(ExceptionReceiveContext context, IPipe<ExceptionReceiveContext> next)
        {
            if (!lifetime.ApplicationStopping.IsCancellationRequested || !IsCancellation(context.Exception))
            {
                return next.Send(context);
            }
            logger.LogInformation("A message of {Queue} goes back to its queue: this process is stopping", queue);
            // Failing the receive pipe makes the transport requeue the delivery for another consumer.
            return Task.FromException(new OperationCanceledException(
                $"This process is stopping; the message goes back to {queue}.", context.Exception, lifetime.ApplicationStopping));
        }

        public void Probe(ProbeContext context) => context.CreateFilterScope("requeueWhenStopping");

        /// <summary>MassTransit reports a consumer's <see cref="OperationCanceledException"/> as <see cref="ConsumerCanceledException"/>.</summary>
        private static bool IsCancellation(Exception? exception) => exception switch
        {
            OperationCanceledException or ConsumerCanceledException => true,
            AggregateException aggregate => aggregate.InnerExceptions.Count > 0 && aggregate.InnerExceptions.All(IsCancellation),
            _ => false,
        };
    }
}
