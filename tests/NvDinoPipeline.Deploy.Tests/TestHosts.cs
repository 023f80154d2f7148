using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>Pipeline hosts built the way the services build theirs, on settings a test chooses.</summary>
public static class TestHosts
{
    public static Dictionary<string, string?> EmbeddedSettings(string folder) => EmbeddedHosts.Settings(folder);

    public static IHost Build(IDictionary<string, string?> settings, Action<PipelineHostBuilder> configure) => EmbeddedHosts.Build(settings, configure);

    /// <summary>A TCP port nothing listens on right now (HttpListener cannot pick one itself).</summary>
    public static int FreePort() => EmbeddedHosts.FreePort();

    /// <summary>Polls until <paramref name="read"/> returns a value meeting <paramref name="condition"/>; fails with the last value seen.</summary>
    public static async Task<T> WaitForAsync<T>(Func<Task<T>> read, Func<T, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        T last = default!;
        Exception? lastError = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await read();
                lastError = null;
                if (condition(last))
                {
                    return last;
                }
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                lastError = exception;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"{what} not reached within {timeout}; last seen: {(lastError is null ? last?.ToString() : lastError.Message)}");
    }
}
