using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Testing;

/// <summary>
/// Hosts built the way the services build theirs, on the embedded default (in-memory transport, SQLite state, file
/// artifacts) in a test's folder.
/// </summary>
public static class EmbeddedHosts
{
    /// <summary>The settings of a one-process host whose state, artifacts and scratch all live below <paramref name="folder"/>.</summary>
    public static Dictionary<string, string?> Settings(string folder) => new()
    {
        ["Messaging:Transport"] = "InMemory",
        ["State:Provider"] = "Sqlite",
        ["State:ConnectionString"] = $"Data Source={Path.Combine(folder, "state.db")}",
        ["ArtifactStore:Root"] = new Uri(Path.Combine(folder, "artifacts") + "/").AbsoluteUri,
        ["ArtifactStore:AllowedReadRoots:0"] = folder,
        ["Workers:ScratchDirectory"] = Path.Combine(folder, "scratch"),
        ["Workers:ProgressInterval"] = "00:00:00.050",
    };

    /// <summary><see cref="Settings"/> with <paramref name="extra"/> on top.</summary>
    public static Dictionary<string, string?> Settings(string folder, IEnumerable<KeyValuePair<string, string?>> extra)
    {
        var settings = Settings(folder);
        foreach (var (key, value) in extra)
            settings[key] = value;
        return settings;
    }

    /// <summary>A host on <paramref name="settings"/> with the services <paramref name="configure"/> adds.</summary>
    public static IHost Build(IDictionary<string, string?> settings, Action<PipelineHostBuilder> configure, Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        services?.Invoke(builder.Services);
        builder.AddNvDinoPipeline(configure);
        return builder.Build();
    }

    /// <summary>The job once it is done or failed; the last state seen (or null) when <paramref name="timeout"/> passes first.</summary>
    public static async Task<JobRecord?> WaitForJobAsync(this IHost host, Guid jobId, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(host);
        var jobs = host.Services.GetRequiredService<JobStore>();
        var deadline = DateTime.UtcNow + timeout;
        JobRecord? job = null;
        while (DateTime.UtcNow < deadline)
        {
            job = await jobs.FindAsync(jobId, CancellationToken.None);
            if (job?.Status is JobStatus.Done or JobStatus.Error)
                break;
            await Task.Delay(100);
        }
        return job;
    }

    /// <summary>A TCP port nothing listens on right now (for a host's health endpoint, or a child process).</summary>
    public static int FreePort()
    {
        // Below Linux's ephemeral range (32768-60999): a port handed to a child process is not taken
        // by an outgoing connection (broker, database) before the child binds it.
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(20000, 32000);
            try
            {
                using var probe = new TcpListener(IPAddress.Loopback, port);
                probe.Start();
                return port;
            }
            catch (SocketException)
            {
            }
        }
        throw new InvalidOperationException("No free port found between 20000 and 32000.");
    }
}
