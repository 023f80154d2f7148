using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace NvDinoPipeline.Hosting.Observability;

public static class TelemetryExtensions
{
    /// <summary>
    /// Traces of <see cref="PipelineTracing.SourceName"/> (pipelines and their stage jobs), exported over OTLP when
    /// <c>Telemetry:OtlpEndpoint</c> is set. Tests and other listeners can add their own exporters to the same provider.
    /// </summary>
    public static IHostApplicationBuilder AddPipelineTelemetry(this IHostApplicationBuilder builder)
    {
        var settings = builder.Configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new TelemetryOptions();
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(string.IsNullOrWhiteSpace(settings.ServiceName)
                ? builder.Environment.ApplicationName is { Length: > 0 } name ? name : "nvdino"
                : settings.ServiceName))
            .WithTracing(tracing =>
            {
                tracing.AddSource(PipelineTracing.SourceName);
                if (settings.OtlpEndpoint is { } endpoint)
                {
                    tracing.AddOtlpExporter(otlp =>
                    {
                        otlp.Endpoint = endpoint;
                        otlp.Protocol = settings.OtlpProtocol.Equals("http/protobuf", StringComparison.OrdinalIgnoreCase)
                            ? OtlpExportProtocol.HttpProtobuf
                            : OtlpExportProtocol.Grpc;
                    });
                }
            });
        return builder;
    }
}
