using System.Diagnostics;

namespace NvDinoPipeline.EngineGeneration.TensorRt;

/// <summary>How a trtexec run ended; <see cref="Tail"/> holds its last log lines.</summary>
public sealed record TrtexecExit(int ExitCode, IReadOnlyList<string> Lines, TimeSpan Elapsed)
{
    public IReadOnlyList<string> Tail(int count) => Lines.Count <= count ? Lines : [.. Lines.Skip(Lines.Count - count)];
}

/// <summary>Runs trtexec, keeping every line it prints (stdout and stderr) in a log file and in memory.</summary>
public static class TrtexecProcess
{
    /// <exception cref="TimeoutException">The run took longer than <paramref name="timeout"/>; the process tree is killed.</exception>
    public static async Task<TrtexecExit> RunAsync(string trtexec, IReadOnlyList<string> arguments, string logPath, TimeSpan timeout,
        Action<string>? onLine, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(trtexec)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(logPath)!,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var lines = new List<string>();
        await using var log = new StreamWriter(logPath, append: false) { AutoFlush = true };
        var gate = new object();
        void Record(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (gate)
            {
                lines.Add(line);
                log.WriteLine(line);
            }

            onLine?.Invoke(line);
        }

        Record($"$ {trtexec} {string.Join(' ', arguments)}");
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Record(e.Data);
        process.ErrorDataReceived += (_, e) => Record(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw new TimeoutException($"trtexec did not finish within {timeout} and was stopped; its log is in '{logPath}'.");
        }

        // Drains the asynchronous readers: WaitForExit() without a timeout returns once both streams are closed.
        process.WaitForExit();
        lock (gate)
        {
            return new TrtexecExit(process.ExitCode, [.. lines], clock.Elapsed);
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }
}
