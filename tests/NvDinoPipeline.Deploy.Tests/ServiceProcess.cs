using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>
/// One service run as its container runs it: <c>dotnet &lt;Service&gt;.dll</c> from the build output,
/// configured by environment variables only, probed on its health port, stopped with SIGTERM.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private const int SigTerm = 15;
    private const int SigKill = 9;

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private ServiceProcess(string name, Process process, int healthPort)
    {
        Name = name;
        _process = process;
        HealthPort = healthPort;
    }

    public string Name { get; }

    public int HealthPort { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The console output so far (both streams), for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// The service's build output for the configuration these tests were built in
    /// (<c>artifacts/bin/&lt;Project&gt;/debug_linux-x64/</c> beside <c>artifacts/bin/NvDinoPipeline.Deploy.Tests/debug_linux-x64/</c>).
    /// </summary>
    public static string AssemblyPath(ServiceSpec service)
    {
        var flavour = Path.GetFileName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var path = Repo.PathOf("artifacts", "bin", service.Project, flavour, service.Project + ".dll");
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException(
                $"{path} is missing: build the services in the same configuration as the tests first (./scripts/test.sh builds the solution).", path);
    }

    public static ServiceProcess Start(ServiceSpec service, int instance, IReadOnlyDictionary<string, string> settings, string folder)
    {
        var assembly = AssemblyPath(service);
        var port = TestHosts.FreePort();
        var name = $"{service.Name}-{instance}";
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(assembly)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(assembly);
        foreach (var variable in start.Environment.Keys.Where(k => k.Contains("__", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(variable);
        }
        foreach (var (key, value) in settings)
        {
            start.Environment[key] = value;
        }
        start.Environment["Health__Port"] = port.ToString();
        start.Environment["Health__Address"] = "127.0.0.1";
        start.Environment["Workers__ScratchDirectory"] = Path.Combine(folder, "scratch", name);
        start.Environment["Logging__JsonFile"] = Path.Combine(folder, "logs", name + ".json");
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";

        var process = new Process { StartInfo = start };
        var started = new ServiceProcess(name, process, port);
        process.OutputDataReceived += (_, line) => started.Append(line.Data);
        process.ErrorDataReceived += (_, line) => started.Append(line.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return started;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    /// <summary>Waits for <c>/readyz</c> to answer 200: broker connected, state database answering.</summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var last = "no answer";
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with code {_process.ExitCode} before it was ready:\n{Output}");
            }
            try
            {
                using var response = await _http.GetAsync($"http://127.0.0.1:{HealthPort}/readyz");
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
            {
                last = exception.Message;
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"{Name} was not ready within {timeout} (last /readyz: {last}):\n{Output}");
    }

    /// <summary>SIGTERM, as Docker and Kubernetes stop a container; killed if it does not end within <paramref name="timeout"/>.</summary>
    public async Task<bool> StopAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return true;
        }
        _ = Kill(_process.Id, SigTerm);
        using var wait = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(wait.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
            return false;
        }
    }

    /// <summary>SIGKILL, as a crash or the OOM killer ends a process: no shutdown, no hand-back, nothing flushed.</summary>
    public async Task KillAsync()
    {
        if (_process.HasExited)
        {
            return;
        }
        _ = Kill(_process.Id, SigKill);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(30));
        _process.Dispose();
        _http.Dispose();
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
