using System.Diagnostics;
using System.Text.RegularExpressions;

namespace NvDinoPipeline.Deploy.Tests.Faults;

/// <summary>
/// A RabbitMQ node, a PostgreSQL cluster and an s3rver of a fault campaign's own, started by the project's service
/// scripts on ports no other test uses, so that restarting or stopping them disturbs nothing else.
/// The ports (<c>portBase</c> to <c>portBase + 39</c>) must lie outside the kernel's ephemeral range: while a service
/// is down, the clients of the campaign's processes keep connecting, and an outgoing connection may take the stopped
/// service's port as its own source port (or connect to itself), so the service could not listen on it again.
/// </summary>
public sealed partial class PrivateServices(string folder, int portBase) : IAsyncDisposable
{
    private readonly Dictionary<string, string> _variables = [];

    public string RabbitMqUri => Variable("NVDINO_TEST_RABBITMQ");

    public string PostgresConnectionString => Variable("NVDINO_TEST_POSTGRES");

    public string S3Url => Variable("NVDINO_TEST_S3_URL");

    public string S3AccessKey => Variable("NVDINO_TEST_S3_ACCESS_KEY");

    public string S3SecretKey => Variable("NVDINO_TEST_S3_SECRET_KEY");

    /// <summary>
    /// Starts all three (installing what is missing), with RabbitMQ's delivery timeout set to <paramref name="consumerTimeout"/>.
    /// What an earlier run on the same ports left running (its process died before it could stop them) is stopped
    /// and its data removed first.
    /// </summary>
    public async Task StartAsync(TimeSpan consumerTimeout)
    {
        _consumerTimeout = consumerTimeout;
        RequireOutsideEphemeralRange();
        await DisposeAsync();
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
        await Task.WhenAll(ScriptAsync("rabbitmq", "start"), ScriptAsync("postgres", "start"), ScriptAsync("s3rver", "start"));
        foreach (var service in new[] { "rabbitmq", "postgres", "s3rver" })
        {
            foreach (Match match in ExportPair().Matches(await ScriptAsync(service, "env")))
            {
                _variables[match.Groups[1].Value] = match.Groups[2].Value.Trim('"');
            }
        }
    }

    private TimeSpan _consumerTimeout = TimeSpan.FromDays(1);

    /// <summary>How many ports from <c>portBase</c> the three services take (RabbitMQ +0..+9, PostgreSQL +20, s3rver +30).</summary>
    private const int PortSpan = 40;

    private void RequireOutsideEphemeralRange()
    {
        const string rangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
        if (!File.Exists(rangeFile))
        {
            return;
        }
        var bounds = File.ReadAllText(rangeFile).Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
        var (low, high) = (int.Parse(bounds[0]), int.Parse(bounds[1]));
        if (portBase <= high && portBase + PortSpan - 1 >= low)
        {
            throw new InvalidOperationException(
                $"Ports {portBase}-{portBase + PortSpan - 1} overlap the ephemeral range {low}-{high} ({rangeFile}): "
                + "a stopped service could find its port taken by an outgoing connection. Choose a port base outside it.");
        }
    }

    public Task StopAsync(string service) => ScriptAsync(service, "stop");

    public Task StartAsync(string service) => ScriptAsync(service, "start");

    public async ValueTask DisposeAsync()
    {
        foreach (var service in new[] { "s3rver", "postgres", "rabbitmq" })
        {
            try
            {
                await ScriptAsync(service, "stop");
            }
            catch (Exception)
            {
                // Best effort: a service that did not start has nothing to stop.
            }
        }
    }

    private string Variable(string name) => _variables.TryGetValue(name, out var value)
        ? value
        : throw new InvalidOperationException($"{name} is unknown: the private services were not started.");

    private async Task<string> ScriptAsync(string service, string verb)
    {
        var start = new ProcessStartInfo("bash", [Repo.PathOf("scripts", "services", service + ".sh"), verb])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["NVDINO_SERVICES_DIR"] = folder;
        start.Environment["NVDINO_RABBITMQ_PORT"] = portBase.ToString();
        start.Environment["NVDINO_RABBITMQ_NODENAME"] = $"nvdino{portBase}";
        start.Environment["NVDINO_RABBITMQ_CONSUMER_TIMEOUT_MS"] = ((long)_consumerTimeout.TotalMilliseconds).ToString();
        start.Environment["NVDINO_POSTGRES_PORT"] = (portBase + 20).ToString();
        start.Environment["NVDINO_S3RVER_PORT"] = (portBase + 30).ToString();
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/services/{service}.sh {verb} failed ({process.ExitCode}): {await error}");
        }
        return await output;
    }

    [GeneratedRegex(@"(NVDINO_TEST_[A-Z0-9_]+)=(""[^""]*""|\S+)")]
    private static partial Regex ExportPair();
}
