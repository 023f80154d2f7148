using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Hosting.Health;
using NvDinoPipeline.Hosting.Workers;

namespace NvDinoPipeline.Orchestrator.Api;

/// <summary>
/// Serves the HTTP API (<see cref="ApiEndpoints"/>) and its OpenAPI document on Kestrel, beside the bus, in the process
/// that runs the orchestrator. Records where it listens in <see cref="HostEndpoint"/>, which the heartbeat stores for
/// clients. Requests carry a bearer token when tokens are configured (<see cref="ApiOptions.Tokens"/>): none or a wrong one
/// is answered 401, a read token on a call that changes something 403.
/// </summary>
public sealed class ApiServer(IServiceProvider services, IOptions<ApiOptions> options, HostEndpoint endpoint, ILogger<ApiServer> logger)
    : IHostedService, IAsyncDisposable
{
    public const string OpenApiPath = "/api/v1/openapi.json";
    private const string AccessItem = "nvdino.access";

    private WebApplication? _server;

    /// <summary>The JSON of every answer and request body: snake_case names, enums by name.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            return;
        }
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = typeof(ApiServer).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        builder.Configuration.Sources.Clear();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = 2 * 1024 * 1024;
            kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            kestrel.Limits.MaxConcurrentConnections = 256;
            if (ListenAddresses.Resolve(settings.Address, "Api:Address") is { } addresses)
            {
                foreach (var address in addresses)
                {
                    kestrel.Listen(address, settings.Port);
                }
            }
            else
            {
                kestrel.ListenAnyIP(settings.Port);
            }
        });
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.PropertyNamingPolicy = Json.PropertyNamingPolicy;
            json.SerializerOptions.Converters.Add(new JsonStringEnumConverter());
        });
        builder.Services.AddOpenApi("v1", openApi => openApi.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "NvDinoPipeline API";
            document.Info.Description = "Pipelines and jobs of NvDinoPipeline: start, status, cancel, resume, single actions with a parent job, logs, artifacts, metrics.";
            return Task.CompletedTask;
        }));
        builder.Services.AddProblemDetails();
        var server = builder.Build();
        server.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (Exception exception) when (!context.RequestAborted.IsCancellationRequested)
            {
                // The API's own host logs nothing: what went wrong goes to this process's log, the client gets a 500.
                logger.LogError(exception, "API request {Method} {Path} failed", context.Request.Method, context.Request.Path.Value);
                if (!context.Response.HasStarted)
                {
                    await Results.Problem(statusCode: StatusCodes.Status500InternalServerError, title: "Internal Server Error",
                        detail: "The request failed; the host's log says why.").ExecuteAsync(context);
                }
            }
        });
        server.Use((context, next) => AuthorizeAsync(context, next, settings));
        ApiEndpoints.Map(server, services);
        DashboardEndpoints.Map(server, services);
        server.MapOpenApi(OpenApiPath);
        try
        {
            await server.StartAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is IOException or System.Net.Sockets.SocketException)
        {
            await server.DisposeAsync();
            throw new InvalidOperationException(
                $"The API cannot listen on {settings.Address}:{settings.Port} (Api:Address, Api:Port): {exception.Message}", exception);
        }
        _server = server;
        var bound = server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("The API started without an address.");
        var port = new Uri(bound.Replace("[::]", "localhost", StringComparison.Ordinal).Replace("0.0.0.0", "localhost", StringComparison.Ordinal)).Port;
        // What another process of this host (the CLI) connects to: the wildcard is reached through the loopback interface.
        var host = ListenAddresses.IsWildcard(settings.Address) ? "127.0.0.1"
            : settings.Address.Contains(':') && !settings.Address.StartsWith('[') ? $"[{settings.Address}]" : settings.Address;
        endpoint.Url = $"http://{host}:{port}/";
        logger.LogInformation("HTTP API on {Url} (OpenAPI document {OpenApi}){Tokens}", endpoint.Url, OpenApiPath,
            settings.Tokens.Count == 0 ? ", no token asked for on this loopback address" : $", {settings.Tokens.Count} token(s) configured");
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

    /// <summary>Whether the request may read, or also change; refused requests are answered here.</summary>
    private static async Task AuthorizeAsync(HttpContext context, RequestDelegate next, ApiOptions settings)
    {
        ApiAccess? access = settings.Tokens.Count == 0 ? ApiAccess.Control : null;
        if (access is null && DashboardEndpoints.IsPublic(context.Request.Path))
        {
            // The dashboard's page and scripts: they ask for a token and hold no data themselves.
            access = ApiAccess.Read;
            context.Items[AccessItem] = ApiAccess.Read;
            await next(context);
            return;
        }
        if (access is null && BearerTokens.Of(context.Request) is { } given)
        {
            // Every configured token is compared, so the time taken does not say which one nearly matched.
            foreach (var token in settings.Tokens)
            {
                if (BearerTokens.Same(given, token.Token) && (access is null || token.Access == ApiAccess.Control))
                {
                    access = token.Access;
                }
            }
        }
        if (access is null)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await Results.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized",
                detail: "This API needs a bearer token (Authorization: Bearer <token>); the request carried none or an unknown one.").ExecuteAsync(context);
            return;
        }
        context.Items[AccessItem] = access.Value;
        await next(context);
    }

    /// <summary>An endpoint filter for calls that start, cancel or resume: a read token is refused with 403.</summary>
    public static ValueTask<object?> RequireControl(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        context.HttpContext.Items[AccessItem] is ApiAccess.Control
            ? next(context)
            : ValueTask.FromResult<object?>(Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
                detail: "This token may read but not start, cancel or resume."));
}
