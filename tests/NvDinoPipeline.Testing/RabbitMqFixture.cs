using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;

namespace NvDinoPipeline.Testing;

/// <summary>
/// A RabbitMQ virtual host of its own for one test class or collection, so that queues and exchanges
/// of tests running in parallel never meet; deleted afterwards. Falls back to the broker's default
/// virtual host when the broker has no management API.
/// Use as <c>IClassFixture&lt;RabbitMqFixture&gt;</c> or through a collection definition in the test project.
/// </summary>
public sealed class RabbitMqFixture : IAsyncLifetime
{
    private HttpClient? _management;

    public RabbitMqEndpoint Broker { get; private set; } = null!;

    /// <summary>AMQP address including this fixture's virtual host, e.g. <c>amqp://guest:guest@127.0.0.1:56720/nvdino-test-3f2a…</c>.</summary>
    public Uri Uri { get; private set; } = null!;

    public string VirtualHost { get; private set; } = "/";

    public async Task InitializeAsync()
    {
        Broker = await TestServices.GetRabbitMqAsync();
        Uri = Broker.Uri;
        if (Broker.ManagementUri is null)
        {
            return;
        }

        _management = CreateManagementClient(Broker.ManagementUri);
        var name = TestServices.UniqueName("nvdino-test");
        var user = Uri.UnescapeDataString(Broker.Uri.UserInfo.Split(':')[0]);
        await SendAsync(HttpMethod.Put, $"api/vhosts/{Uri.EscapeDataString(name)}", new { description = "integration test" });
        await SendAsync(HttpMethod.Put, $"api/permissions/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(user)}",
            new { configure = ".*", write = ".*", read = ".*" });
        VirtualHost = name;
        Uri = new UriBuilder(Broker.Uri) { Path = "/" + Uri.EscapeDataString(name) }.Uri;
    }

    public async Task DisposeAsync()
    {
        if (_management is null)
        {
            return;
        }
        if (VirtualHost != "/")
        {
            await SendAsync(HttpMethod.Delete, $"api/vhosts/{Uri.EscapeDataString(VirtualHost)}", body: null);
        }
        _management.Dispose();
    }

    /// <summary>Publishes <paramref name="body"/> as it is to <paramref name="queue"/> (through the default exchange), as a plain AMQP client would.</summary>
    public async Task PublishRawAsync(string queue, string body, string contentType, IReadOnlyDictionary<string, string>? headers = null)
    {
        var properties = new Dictionary<string, object> { ["content_type"] = contentType, ["delivery_mode"] = 2 };
        if (headers is not null)
        {
            properties["headers"] = headers;
        }
        using var response = await Management.PostAsJsonAsync($"api/exchanges/{Uri.EscapeDataString(VirtualHost)}/amq.default/publish", new
        {
            properties,
            routing_key = queue,
            payload = body,
            payload_encoding = "string",
        });
        response.EnsureSuccessStatusCode();
        var answer = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        if (!answer.GetProperty("routed").GetBoolean())
        {
            throw new InvalidOperationException($"The broker routed the message for {queue} nowhere: the queue does not exist in {VirtualHost}.");
        }
    }

    /// <summary>How many messages <paramref name="queue"/> of this fixture's virtual host holds; null while it does not exist.</summary>
    public async Task<long?> QueueDepthAsync(string queue)
    {
        using var response = await Management.GetAsync($"api/queues/{Uri.EscapeDataString(VirtualHost)}/{Uri.EscapeDataString(queue)}");
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
        response.EnsureSuccessStatusCode();
        var queueInfo = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        return queueInfo.TryGetProperty("messages", out var messages) ? messages.GetInt64() : 0;
    }

    /// <summary>Up to <paramref name="count"/> messages of <paramref name="queue"/>, left in the queue: each one's headers and body.</summary>
    public async Task<IReadOnlyList<(System.Text.Json.JsonElement Headers, string Body)>> PeekAsync(string queue, int count)
    {
        using var response = await Management.PostAsJsonAsync($"api/queues/{Uri.EscapeDataString(VirtualHost)}/{Uri.EscapeDataString(queue)}/get",
            new { count, ackmode = "ack_requeue_true", encoding = "auto" });
        response.EnsureSuccessStatusCode();
        var messages = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        return messages.EnumerateArray()
            .Select(m => (m.GetProperty("properties").TryGetProperty("headers", out var h) ? h.Clone() : default, m.GetProperty("payload").GetString()!))
            .ToList();
    }

    /// <summary>Empties <paramref name="queue"/> when it exists.</summary>
    public async Task PurgeAsync(string queue)
    {
        using var response = await Management.DeleteAsync($"api/queues/{Uri.EscapeDataString(VirtualHost)}/{Uri.EscapeDataString(queue)}/contents");
        if (response.StatusCode != System.Net.HttpStatusCode.NotFound)
        {
            response.EnsureSuccessStatusCode();
        }
    }

    private HttpClient Management => _management
        ?? throw new TestServiceUnavailableException("The test broker has no management API (set NVDINO_TEST_RABBITMQ_MANAGEMENT).");

    private static HttpClient CreateManagementClient(Uri managementUri)
    {
        var credentials = Uri.UnescapeDataString(managementUri.UserInfo);
        var client = new HttpClient
        {
            BaseAddress = new UriBuilder(managementUri) { UserName = "", Password = "", Path = "/" }.Uri,
            Timeout = TimeSpan.FromSeconds(30),
        };
        client.DefaultRequestHeaders.Authorization =
            new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));
        return client;
    }

    private async Task SendAsync(HttpMethod method, string path, object? body)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        HttpResponseMessage response;
        try
        {
            response = await _management!.SendAsync(request);
        }
        catch (HttpRequestException e)
        {
            throw new TestServiceUnavailableException(
                $"The RabbitMQ management API at {_management!.BaseAddress} does not answer ({e.Message}). " +
                TestServices.HowToStart("rabbitmq"), e);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var text = await response.Content.ReadAsStringAsync();
                throw new TestServiceUnavailableException(
                    $"RabbitMQ management API {method} {path} answered {(int)response.StatusCode}: {text}");
            }
        }
    }
}
