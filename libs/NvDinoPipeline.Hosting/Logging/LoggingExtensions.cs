using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace NvDinoPipeline.Hosting.Logging;

public static class LoggingExtensions
{
    private const string ConsoleTemplate = "[{Timestamp:HH:mm:ss} {Level:u3}]{JobTag} {Message:lj}{NewLine}{Exception}";

    /// <summary>
    /// Serilog to the console, and as JSON to <c>Logging:JsonFile</c> when set. Lines logged inside a
    /// job carry its pipeline and job ids, and are kept with the job in the state database (<see cref="JobLogSink"/>).
    /// Each host has its own logger, never the static <c>Serilog.Log.Logger</c>: with several hosts in one process (the
    /// tests, an embedded host beside a CLI), one host's lines stay in its own sinks and job logs, and a host that stops
    /// does not silence the others.
    /// </summary>
    public static IHostApplicationBuilder AddPipelineLogging(this IHostApplicationBuilder builder)
    {
        var jsonFile = builder.Configuration["Logging:JsonFile"];
        builder.Services.AddSingleton<JobLogSink>();
        builder.Services.AddSerilog((services, logger) =>
        {
            logger
                .MinimumLevel.Information()
                .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
                .MinimumLevel.Override("MassTransit", LogEventLevel.Warning)
                // Readiness answers 503 while the bus starts or stops; that is the answer, not an error.
                .MinimumLevel.Override("Microsoft.Extensions.Diagnostics.HealthChecks", LogEventLevel.Fatal)
                .ReadFrom.Configuration(builder.Configuration)
                .Enrich.FromLogContext()
                .Enrich.With<JobTagEnricher>()
                .WriteTo.Console(outputTemplate: ConsoleTemplate, standardErrorFromLevel: LogEventLevel.Verbose)
                .WriteTo.Sink(services.GetRequiredService<JobLogSink>(), LogEventLevel.Information);
            if (!string.IsNullOrWhiteSpace(jsonFile))
            {
                logger.WriteTo.File(new CompactJsonFormatter(), jsonFile);
            }
        }, preserveStaticLogger: true);
        return builder;
    }

    /// <summary>Renders ` [pipeline/job]` on console lines about a job; nothing otherwise.</summary>
    private sealed class JobTagEnricher : ILogEventEnricher
    {
        public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
        {
            var tag = "";
            if (logEvent.Properties.TryGetValue("PipelineId", out var pipeline))
            {
                tag = logEvent.Properties.TryGetValue("JobId", out var job)
                    ? $" [{Short(pipeline)}/{Short(job)}]"
                    : $" [{Short(pipeline)}]";
            }
            logEvent.AddPropertyIfAbsent(propertyFactory.CreateProperty("JobTag", tag));
        }

        private static string Short(LogEventPropertyValue value)
        {
            var text = value.ToString().Trim('"');
            return text.Length > 8 ? text[..8] : text;
        }
    }
}
