using System.Security.Cryptography;
using DotNet.Testcontainers.Builders;
using Testcontainers.RabbitMq;

namespace NvDinoPipeline.Testing;

/// <summary>
/// Where the integration tests find their services. Addresses come from the environment that
/// <c>./scripts/test.sh</c> (or <c>scripts/services/*.sh env</c>) sets up; RabbitMQ alone can also come
/// from a Testcontainers container when a Docker engine is usable.
/// </summary>
public static class TestServices
{
    public const string RabbitMqVariable = "NVDINO_TEST_RABBITMQ";
    public const string RabbitMqManagementVariable = "NVDINO_TEST_RABBITMQ_MANAGEMENT";
    public const string PostgresVariable = "NVDINO_TEST_POSTGRES";
    public const string S3UrlVariable = "NVDINO_TEST_S3_URL";
    public const string S3AccessKeyVariable = "NVDINO_TEST_S3_ACCESS_KEY";
    public const string S3SecretKeyVariable = "NVDINO_TEST_S3_SECRET_KEY";

    private const string RabbitMqImage = "rabbitmq:3.13-management";
    private const int RabbitMqManagementPort = 15672;
    private const string ContainerUser = "nvdino";
    private const string ContainerPassword = "nvdino";

    private static readonly Lazy<Task<RabbitMqEndpoint>> Broker = new(FindRabbitMqAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// The broker for this test run: <c>NVDINO_TEST_RABBITMQ</c> when set, otherwise a RabbitMQ container
    /// started once per process. Throws <see cref="TestServiceUnavailableException"/> saying how to get one.
    /// </summary>
    public static Task<RabbitMqEndpoint> GetRabbitMqAsync(CancellationToken cancellationToken = default) =>
        Broker.Value.WaitAsync(cancellationToken);

    /// <summary>AMQP address of the broker (default virtual host); see <see cref="GetRabbitMqAsync"/>.</summary>
    public static Uri RabbitMqUri => GetRabbitMqAsync().GetAwaiter().GetResult().Uri;

    /// <summary>Npgsql connection string of the test server's <c>nvdino</c> database (<c>NVDINO_TEST_POSTGRES</c>).</summary>
    public static string PostgresConnectionString =>
        Environment.GetEnvironmentVariable(PostgresVariable) is { Length: > 0 } value
            ? value
            : throw new TestServiceUnavailableException(
                $"No PostgreSQL server for the integration tests: {PostgresVariable} is not set. {HowToStart("postgres")}");

    /// <summary>The S3-compatible server (<c>NVDINO_TEST_S3_URL</c>, <c>NVDINO_TEST_S3_ACCESS_KEY</c>, <c>NVDINO_TEST_S3_SECRET_KEY</c>).</summary>
    public static S3Endpoint S3
    {
        get
        {
            var url = Environment.GetEnvironmentVariable(S3UrlVariable);
            if (string.IsNullOrEmpty(url))
            {
                throw new TestServiceUnavailableException(
                    $"No S3-compatible server for the integration tests: {S3UrlVariable} is not set. {HowToStart("s3rver")}");
            }
            if (!Uri.TryCreate(url, UriKind.Absolute, out var serviceUrl))
            {
                throw new TestServiceUnavailableException($"{S3UrlVariable} is '{url}', which is not an absolute URL such as http://127.0.0.1:45690.");
            }
            return new S3Endpoint
            {
                ServiceUrl = serviceUrl,
                AccessKey = Environment.GetEnvironmentVariable(S3AccessKeyVariable) is { Length: > 0 } key ? key : "S3RVER",
                SecretKey = Environment.GetEnvironmentVariable(S3SecretKeyVariable) is { Length: > 0 } secret ? secret : "S3RVER",
            };
        }
    }

    /// <summary>
    /// A name no other test or test run uses: lowercase letters, digits and <paramref name="separator"/>,
    /// at most 63 characters, so it is valid as an S3 bucket, a PostgreSQL database or a RabbitMQ virtual host.
    /// </summary>
    public static string UniqueName(string prefix, char separator = '-')
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(prefix);
        var clean = new string(prefix.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : separator).ToArray()).Trim(separator);
        if (clean.Length == 0 || !char.IsAsciiLetterLower(clean[0]))
        {
            throw new ArgumentException($"Prefix '{prefix}' must start with a letter.", nameof(prefix));
        }
        var suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        if (clean.Length > 63 - suffix.Length - 1)
        {
            clean = clean[..(63 - suffix.Length - 1)];
        }
        return $"{clean}{separator}{suffix}";
    }

    internal static string HowToStart(string service) =>
        $"Run the tests with ./scripts/test.sh, which starts every service, or start this one for the current shell with: " +
        $"scripts/services/{service}.sh start && eval \"$(scripts/services/{service}.sh env)\"";

    private static async Task<RabbitMqEndpoint> FindRabbitMqAsync()
    {
        if (Environment.GetEnvironmentVariable(RabbitMqVariable) is { Length: > 0 } configured)
        {
            if (!Uri.TryCreate(configured, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps" or "rabbitmq"))
            {
                throw new TestServiceUnavailableException($"{RabbitMqVariable} is '{configured}', which is not an AMQP URL such as amqp://guest:guest@127.0.0.1:56720/.");
            }
            Uri? management = null;
            if (Environment.GetEnvironmentVariable(RabbitMqManagementVariable) is { Length: > 0 } managementValue
                && !Uri.TryCreate(managementValue, UriKind.Absolute, out management))
            {
                throw new TestServiceUnavailableException($"{RabbitMqManagementVariable} is '{managementValue}', which is not an HTTP URL such as http://guest:guest@127.0.0.1:56729/.");
            }
            return new RabbitMqEndpoint { Uri = uri, ManagementUri = management };
        }

        RabbitMqContainer container;
        try
        {
            container = new RabbitMqBuilder(RabbitMqImage)
                .WithUsername(ContainerUser)
                .WithPassword(ContainerPassword)
                .WithPortBinding(RabbitMqManagementPort, assignRandomHostPort: true)
                .Build();
        }
        catch (DockerUnavailableException e)
        {
            throw NoBroker("no Docker engine is usable", e);
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            await container.StartAsync(timeout.Token);
        }
        catch (Exception e)
        {
            await container.DisposeAsync();
            throw NoBroker($"starting a {RabbitMqImage} container failed ({e.GetType().Name}: {e.Message})", e);
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => container.DisposeAsync().AsTask().GetAwaiter().GetResult();
        var host = container.Hostname;
        return new RabbitMqEndpoint
        {
            Uri = new Uri(container.GetConnectionString()),
            ManagementUri = new UriBuilder("http", host, container.GetMappedPublicPort(RabbitMqManagementPort))
            {
                UserName = ContainerUser,
                Password = ContainerPassword,
            }.Uri,
        };
    }

    private static TestServiceUnavailableException NoBroker(string reason, Exception inner) =>
        new($"No RabbitMQ broker for the integration tests: {RabbitMqVariable} is not set and {reason}. {HowToStart("rabbitmq")}", inner);
}
