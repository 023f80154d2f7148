using System.Diagnostics;
using System.Globalization;

namespace NvDinoPipeline.Benchmarks.Harness;

/// <summary>
/// A peer measured in the same run: a Python script of <c>benchmarks/Peers</c> on Debian's <c>python3-torch</c>, kept
/// running so that it takes its turn beside the product's cases. It answers each request ("N": run N images) with one
/// line, the images per second. Installed by <c>scripts/benchmark-peers.sh</c>.
/// </summary>
public sealed class PythonPeer : IDisposable
{
    /// <summary>Debian's interpreter, the one its <c>python3-torch</c> is installed for (a python3 earlier on the PATH may lack it).</summary>
    private const string Interpreter = "/usr/bin/python3";

    private readonly Process _process;

    private PythonPeer(Process process, string description)
    {
        _process = process;
        Description = description;
    }

    /// <summary>What the peer runs on, as it said when ready (its torch version, threads, oneDNN).</summary>
    public string Description { get; }

    /// <summary>Starts <paramref name="script"/> with <paramref name="arguments"/>; null, with the reason printed, when it cannot run here.</summary>
    public static PythonPeer? TryStart(string script, string arguments)
    {
        var path = Path.Combine(Repository.Root, "benchmarks", "Peers", script);
        var start = new ProcessStartInfo(Interpreter, $"\"{path}\" {arguments}")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("python3 did not start");
        }
        catch (Exception exception) when (exception is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            Console.WriteLine($"Peer {script}: {Interpreter} cannot run here ({exception.Message}); no peer in this run.");
            return null;
        }
        var ready = process.StandardOutput.ReadLine();
        if (ready is null || !ready.StartsWith("ready", StringComparison.Ordinal))
        {
            var error = process.StandardError.ReadToEnd().Trim().Split('\n').LastOrDefault();
            process.Kill(entireProcessTree: true);
            process.Dispose();
            Console.WriteLine($"Peer {script} did not start: {error} (scripts/benchmark-peers.sh installs Debian's python3-torch); no peer in this run.");
            return null;
        }
        return new PythonPeer(process, ready["ready: ".Length..]);
    }

    /// <summary>The peer's images per second over <paramref name="images"/> images.</summary>
    public double ImagesPerSecond(int images)
    {
        _process.StandardInput.WriteLine(images.ToString(CultureInfo.InvariantCulture));
        _process.StandardInput.Flush();
        var answer = _process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("The peer stopped: " + _process.StandardError.ReadToEnd());
        return double.Parse(answer, CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(5_000))
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        finally
        {
            _process.Dispose();
        }
    }
}
