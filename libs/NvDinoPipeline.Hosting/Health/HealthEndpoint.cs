using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace NvDinoPipeline.Hosting.Health;

/// <summary>
/// Serves <c>/healthz</c> (the process is alive) and <c>/readyz</c> (every check tagged
/// <see cref="HealthTags.Ready"/> passes: the bus is started and connected, the state database answers)
/// over plain HTTP, for container health checks and Kubernetes probes. Registered before the bus, it
/// answers from the start of the process and stops last. Answers carry each check's status only; what a failing
/// check reported (error text, addresses) goes to the log, once each time a check changes status.
/// </summary>
public sealed class HealthEndpoint(
    HealthCheckService checks,
    IHostApplicationLifetime lifetime,
    IOptions<HealthOptions> options,
    ILogger<HealthEndpoint> logger) : IHostedService, IDisposable
{
    public const string LivenessPath = "/healthz";
    public const string ReadinessPath = "/readyz";

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, HealthStatus> _lastStatus = new(StringComparer.Ordinal);
    private HttpListener? _listener;
    private Task _serving = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            return Task.CompletedTask;
        }
        var listener = new HttpListener();
        listener.Prefixes.Add(settings.Prefix);
        try
        {
            listener.Start();
        }
        catch (HttpListenerException exception)
        {
            listener.Close();
            throw new InvalidOperationException(
                $"Health endpoints cannot listen on {settings.Prefix} (Health:Address '{settings.Address}', Health:Port {settings.Port}): {exception.Message}",
                exception);
        }
        _listener = listener;
        _serving = ServeAsync(listener);
        logger.LogInformation("Health endpoints {Liveness} and {Readiness} listening on {Prefix}", LivenessPath, ReadinessPath, settings.Prefix);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_listener is null)
        {
            return;
        }
        _listener.Stop();
        await _serving.WaitAsync(cancellationToken);
    }

    public void Dispose() => _listener?.Close();

    private async Task ServeAsync(HttpListener listener)
    {
        var pending = new List<Task>();
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception exception) when (exception is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                // Stop() ends the wait for the next request.
                break;
            }
            pending.RemoveAll(task => task.IsCompleted);
            pending.Add(AnswerAsync(context));
        }
        await Task.WhenAll(pending);
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        var response = context.Response;
        try
        {
            var request = context.Request;
            var path = request.Url?.AbsolutePath.TrimEnd('/') ?? "";
            if (request.HttpMethod is not ("GET" or "HEAD"))
            {
                response.AddHeader("Allow", "GET, HEAD");
                await WriteAsync(response, HttpStatusCode.MethodNotAllowed, new { status = "MethodNotAllowed" }, request.HttpMethod == "HEAD");
                return;
            }
            var head = request.HttpMethod == "HEAD";
            switch (path)
            {
                case LivenessPath:
                    await WriteAsync(response, HttpStatusCode.OK, new { status = nameof(HealthStatus.Healthy) }, head);
                    break;
                case ReadinessPath:
                    var (code, body) = await ReadinessAsync();
                    await WriteAsync(response, code, body, head);
                    break;
                default:
                    await WriteAsync(response, HttpStatusCode.NotFound,
                        new { status = "NotFound", paths = new[] { LivenessPath, ReadinessPath } }, head);
                    break;
            }
        }
        catch (Exception exception) when (exception is HttpListenerException or ObjectDisposedException or IOException)
        {
            logger.LogDebug(exception, "A health request ended before its answer was sent");
        }
        catch (Exception exception)
        {
            logger.LogWarning(exception, "Answering a health request failed");
            try
            {
                response.StatusCode = (int)HttpStatusCode.InternalServerError;
            }
            catch (InvalidOperationException)
            {
            }
        }
        finally
        {
            try
            {
                response.Close();
            }
            catch (Exception exception) when (exception is HttpListenerException or ObjectDisposedException or IOException)
            {
            }
        }
    }

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

    private static async Task WriteAsync(HttpListenerResponse response, HttpStatusCode code, object body, bool head)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body);
        response.StatusCode = (int)code;
        response.ContentType = "application/json; charset=utf-8";
        response.Headers["Cache-Control"] = "no-store";
        if (!head)
        {
            response.ContentLength64 = bytes.Length;
            await response.OutputStream.WriteAsync(bytes);
        }
    }
}

public static class HealthTags
{
    /// <summary>MassTransit tags its bus check with this too.</summary>
    public const string Ready = "ready";
}
