using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Hosting.Observability;

namespace NvDinoPipeline.Hosting.Health;

/// <summary>
/// Serves <c>/healthz</c> (the process is alive) and <c>/readyz</c> (every check tagged
/// <see cref="HealthTags.Ready"/> passes: the bus is started and connected, the state database answers)
/// over plain HTTP (Kestrel), for container health checks and Kubernetes probes, and <c>/metrics</c>
/// (<see cref="PipelineMetrics"/>, Prometheus' text format) for scrapers. Registered before the bus, it
/// answers from the start of the process and stops last. Answers carry each check's status only; what a failing
/// check reported (error text, addresses) goes to the log, once each time a check changes status.
/// </summary>
/// <remarks>
/// Not <see cref="System.Net.HttpListener"/>: on Linux its start throws (and the process dies) when a probe connects
/// while it is being set up (dotnet/corefx#35191), which a container orchestrator probing a starting process does.
/// </remarks>
public sealed class HealthEndpoint(
    HealthCheckService checks,
    IHostApplicationLifetime lifetime,
    IOptions<HealthOptions> options,
    PipelineMetrics metrics,
    ILogger<HealthEndpoint> logger) : IHostedService, IAsyncDisposable
{
    public const string LivenessPath = "/healthz";
    public const string ReadinessPath = "/readyz";
    public const string MetricsPath = "/metrics";

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, HealthStatus> _lastStatus = new(StringComparer.Ordinal);
    private WebApplication? _server;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            return;
        }
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = typeof(HealthEndpoint).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        builder.Configuration.Sources.Clear();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = 0;
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.Limits.MaxConcurrentConnections = 64;
            if (ListenAddresses.Resolve(settings.Address, "Health:Address") is { } addresses)
            {
                foreach (var address in addresses)
                {
                    kestrel.Listen(address, settings.Port);
                }
            }
            else
            {
                // IPv6 and IPv4 where the host has IPv6, IPv4 alone where it does not.
                kestrel.ListenAnyIP(settings.Port);
            }
        });
        var server = builder.Build();
        server.Run(AnswerAsync);
        try
        {
            await server.StartAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is IOException or System.Net.Sockets.SocketException)
        {
            await server.DisposeAsync();
            throw new InvalidOperationException(
                $"Health endpoints cannot listen on {settings.Prefix} (Health:Address '{settings.Address}', Health:Port {settings.Port}): {exception.Message}",
                exception);
        }
        _server = server;
        logger.LogInformation("Health endpoints {Liveness} and {Readiness}, figures on {Metrics}, listening on {Prefix}", LivenessPath, ReadinessPath, MetricsPath, settings.Prefix);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null)
        {
            await _server.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
            _server = null;
        }
    }

    private async Task AnswerAsync(HttpContext context)
    {
        var request = context.Request;
        var head = HttpMethods.IsHead(request.Method);
        try
        {
            if (!HttpMethods.IsGet(request.Method) && !head)
            {
                context.Response.Headers.Allow = "GET, HEAD";
                await WriteAsync(context.Response, HttpStatusCode.MethodNotAllowed, new { status = "MethodNotAllowed" }, head: false);
                return;
            }
            switch (request.Path.Value?.TrimEnd('/') ?? "")
            {
                case LivenessPath:
                    await WriteAsync(context.Response, HttpStatusCode.OK, new { status = nameof(HealthStatus.Healthy) }, head);
                    break;
                case ReadinessPath:
                    var (code, body) = await ReadinessAsync();
                    await WriteAsync(context.Response, code, body, head);
                    break;
                case MetricsPath when !MayReadMetrics(request):
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                    await WriteAsync(context.Response, HttpStatusCode.Unauthorized, new { status = "Unauthorized" }, head);
                    break;
                case MetricsPath:
                    context.Response.StatusCode = (int)HttpStatusCode.OK;
                    context.Response.ContentType = PipelineMetrics.ContentType;
                    context.Response.Headers.CacheControl = "no-store";
                    if (!head)
                    {
                        await metrics.WriteAsync(context.Response.Body, context.RequestAborted);
                    }
                    break;
                default:
                    await WriteAsync(context.Response, HttpStatusCode.NotFound,
                        new { status = "NotFound", paths = new[] { LivenessPath, ReadinessPath, MetricsPath } }, head);
                    break;
            }
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException)
        {
            logger.LogDebug(exception, "A health request ended before its answer was sent");
        }
        catch (Exception exception)
        {
            logger.LogWarning(exception, "Answering a health request failed");
            if (!context.Response.HasStarted)
            {
                context.Response.StatusCode = (int)HttpStatusCode.InternalServerError;
            }
        }
    }

    /// <summary>No token configured, or the request's bearer token is it (compared in constant time).</summary>
    private bool MayReadMetrics(HttpRequest request) =>
        options.Value.MetricsToken is not { Length: > 0 } token || BearerTokens.Same(BearerTokens.Of(request), token);

    private async Task<(HttpStatusCode Code, object Body)> ReadinessAsync()
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return (HttpStatusCode.ServiceUnavailable, new { status = nameof(HealthStatus.Unhealthy), description = "The process is stopping" });
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping);
        timeout.CancelAfter(options.Value.CheckTimeout);
        HealthReport report;
        try
        {
            report = await checks.CheckHealthAsync(registration => registration.Tags.Contains(HealthTags.Ready), timeout.Token);
        }
        catch (OperationCanceledException)
        {
            return (HttpStatusCode.ServiceUnavailable, new
            {
                status = nameof(HealthStatus.Unhealthy),
                description = lifetime.ApplicationStopping.IsCancellationRequested
                    ? "The process is stopping"
                    : $"The readiness checks did not finish within {options.Value.CheckTimeout}",
            });
        }
        foreach (var (name, entry) in report.Entries)
        {
            if (_lastStatus.TryGetValue(name, out var last) && last == entry.Status)
            {
                continue;
            }
            _lastStatus[name] = entry.Status;
            if (entry.Status == HealthStatus.Healthy)
            {
                logger.LogInformation("Readiness check {Check} is {Status}", name, entry.Status);
            }
            else
            {
                logger.LogWarning(entry.Exception, "Readiness check {Check} is {Status}: {Description}", name, entry.Status, entry.Description);
            }
        }
        var code = report.Status == HealthStatus.Unhealthy ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.OK;
        return (code, new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(entry => entry.Key, entry => new { status = entry.Value.Status.ToString() }),
        });
    }

    private static async Task WriteAsync(HttpResponse response, HttpStatusCode code, object body, bool head)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body);
        response.StatusCode = (int)code;
        response.ContentType = "application/json; charset=utf-8";
        response.Headers.CacheControl = "no-store";
        response.ContentLength = bytes.Length;
        if (!head)
        {
            await response.Body.WriteAsync(bytes);
        }
    }
}

public static class HealthTags
{
    /// <summary>MassTransit tags its bus check with this too.</summary>
    public const string Ready = "ready";
}
