using System.Diagnostics;

namespace NvDinoPipeline.Cli.Tests;

public sealed record CommandResult(int ExitCode, string Output, string Error)
{
    /// <summary>Runs <paramref name="info"/> to its end (two minutes at most), capturing both outputs.</summary>
    public static async Task<CommandResult> RunAsync(ProcessStartInfo info)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {info.FileName}.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return new CommandResult(process.ExitCode, await output, await error);
    }
}

/// <summary>Runs the real <c>nvdino</c> binary (built beside the tests) with its own NVDINO_HOME.</summary>
public sealed class NvdinoProcess(string home, IReadOnlyDictionary<string, string>? environment = null)
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "nvdino.dll");

    public Task<CommandResult> RunAsync(params string[] args) => CommandResult.RunAsync(StartInfo(args));

    public Process Start(params string[] args) => Process.Start(StartInfo(args)) ?? throw new InvalidOperationException("Could not start nvdino.");

    private ProcessStartInfo StartInfo(string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["NVDINO_HOME"] = home;
        info.Environment["Messaging__Transport"] = "InMemory";
        info.Environment["State__Provider"] = "Sqlite";
        info.Environment["State__JobLease"] = "00:00:06";
        info.Environment.Remove("State__ConnectionString");
        info.Environment.Remove("ArtifactStore__Root");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        return info;
    }
}
