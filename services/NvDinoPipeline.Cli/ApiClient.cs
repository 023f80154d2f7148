using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Orchestrator.Api;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Cli;

/// <summary>
/// The HTTP API of a running host, as the CLI uses it: <c>Api:Url</c> when configured, else the API a live orchestrator
/// recorded with its heartbeat. Sends the token <c>Api:ClientToken</c>, else the first control token of <c>Api:Tokens</c>
/// (the host's own settings).
/// </summary>
public sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;

    private ApiClient(Uri baseAddress, string? token)
    {
        _http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    public Uri BaseAddress => _http.BaseAddress!;

    /// <summary>The API to talk to; null when none is configured and no live orchestrator recorded one.</summary>
    public static async Task<ApiClient?> FindAsync(IConfiguration configuration, IServiceProvider services, CancellationToken cancellationToken)
    {
        var url = configuration["Api:Url"];
        if (string.IsNullOrWhiteSpace(url))
        {
            try
            {
                url = await services.GetRequiredService<WorkerStore>().LiveEndpointAsync(ServedStages.Orchestrator, cancellationToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // No state database to ask (yet): there is no host whose API could be found either.
                url = null;
            }
        }
        if (string.IsNullOrWhiteSpace(url))
        {
            return null;
        }
        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var address) || address.Scheme is not ("http" or "https"))
        {
            throw new CliException($"Api:Url '{url}' is not an http:// or https:// URL.");
        }
        var tokens = configuration.GetSection("Api:Tokens").Get<List<ApiToken>>() ?? [];
        var token = configuration["Api:ClientToken"] is { Length: > 0 } client ? client
            : tokens.FirstOrDefault(t => t.Access == ApiAccess.Control)?.Token;
        return new ApiClient(address, token);
    }

    public Task StartAsync(StartPipeline start, CancellationToken cancellationToken) =>
        PostAsync("api/v1/pipelines", new JsonObject
        {
            ["pipeline_id"] = start.PipelineId,
            ["train_data"] = start.TrainDataUri?.ToString(),
            ["test_data"] = start.TestDataUri?.ToString(),
            ["spec"] = JsonNode.Parse(start.Spec),
            ["name"] = start.Name,
            ["results_queue"] = start.ResultsQueue,
        }, cancellationToken);

    public Task CancelAsync(Guid pipelineId, string? reason, CancellationToken cancellationToken) =>
        PostAsync($"api/v1/pipelines/{pipelineId}/cancel", new JsonObject { ["reason"] = reason }, cancellationToken);

    public Task ResumeAsync(Guid pipelineId, CancellationToken cancellationToken) =>
        PostAsync($"api/v1/pipelines/{pipelineId}/resume", new JsonObject(), cancellationToken);

    /// <summary>Starts a single action after a parent job, as the pipeline <paramref name="pipelineId"/>.</summary>
    /// <param name="spec">The keys that change the parent's spec, as JSON or YAML text.</param>
    public Task StartJobAsync(string action, Guid parentJobId, string spec, Uri? testData, string? name, Guid pipelineId, CancellationToken cancellationToken) =>
        PostAsync("api/v1/jobs", new JsonObject
        {
            ["pipeline_id"] = pipelineId,
            ["action"] = action,
            ["parent_job_id"] = parentJobId,
            ["spec"] = spec,
            ["test_data"] = testData?.ToString(),
            ["name"] = name,
        }, cancellationToken);

    public async Task<JsonObject> GetAsync(string path, CancellationToken cancellationToken)
    {
        using var answer = await SendAsync(() => _http.GetAsync(path, cancellationToken));
        return await ReadAsync(answer, cancellationToken);
    }

    /// <summary>Streams one file of a job's folder to <paramref name="destination"/>.</summary>
    public async Task DownloadAsync(string path, Stream destination, CancellationToken cancellationToken)
    {
        using var answer = await SendAsync(() => _http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, cancellationToken));
        if (!answer.IsSuccessStatusCode)
        {
            await ReadAsync(answer, cancellationToken);
        }
        await answer.Content.CopyToAsync(destination, cancellationToken);
    }

    private async Task<JsonObject> PostAsync(string path, JsonObject body, CancellationToken cancellationToken)
    {
        using var answer = await SendAsync(() => _http.PostAsJsonAsync(path, body, cancellationToken));
        return await ReadAsync(answer, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendAsync(Func<Task<HttpResponseMessage>> send)
    {
        try
        {
            return await send();
        }
        catch (HttpRequestException exception)
        {
            throw new ApiUnreachableException(BaseAddress, exception);
        }
    }

    /// <summary>The answer's JSON; a refusal becomes a <see cref="CliException"/> with what the API said (the fields it named).</summary>
    private static async Task<JsonObject> ReadAsync(HttpResponseMessage answer, CancellationToken cancellationToken)
    {
        var text = await answer.Content.ReadAsStringAsync(cancellationToken);
        JsonObject? body = null;
        try
        {
            body = JsonNode.Parse(text) as JsonObject;
        }
        catch (JsonException)
        {
        }
        if (answer.IsSuccessStatusCode)
        {
            return body ?? [];
        }
        var lines = new List<string> { body?["detail"]?.GetValue<string>() ?? body?["title"]?.GetValue<string>() ?? $"{(int)answer.StatusCode} {answer.ReasonPhrase}" };
        foreach (var (field, messages) in body?["errors"]?.AsObject() ?? [])
        {
            foreach (var message in messages?.AsArray() ?? [])
            {
                lines.Add($"  {field}: {message?.GetValue<string>()}");
            }
        }
        var hint = answer.StatusCode switch
        {
            HttpStatusCode.Unauthorized => " (set Api:ClientToken to a token the host accepts)",
            HttpStatusCode.Forbidden => " (the token may only read)",
            _ => "",
        };
        throw new CliException(string.Join(Environment.NewLine, lines) + hint);
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>The API a live host recorded does not answer from here (another machine's loopback, a firewall).</summary>
public sealed class ApiUnreachableException(Uri address, Exception inner)
    : Exception($"The API at {address} does not answer: {inner.Message}", inner);
