using NvDinoPipeline.Orchestrator.Api;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Cli;

public static class Cli
{
    /// <summary>Runs a command body: user errors print one clear message and exit 2.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (CliException exception)
        {
            Console.Error.WriteLine($"error: {exception.Message}");
            return 2;
        }
        catch (SpecValidationException exception)
        {
            Console.Error.WriteLine("error: the spec is not valid; nothing was started.");
            foreach (var error in exception.Errors)
            {
                Console.Error.WriteLine($"  {error}");
            }
            return 2;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("interrupted");
            return 130;
        }
    }

    public static ResolvedSpec ResolveSpec(string[]? files, string[]? overrides)
    {
        foreach (var file in files ?? [])
        {
            if (!File.Exists(file))
            {
                throw new CliException($"--spec: file '{file}' does not exist.");
            }
        }
        return SpecLoader.CreateDefault().Resolve(files ?? [], overrides ?? []);
    }

    /// <summary>True when a live embedded (or any) orchestrator has beaten recently.</summary>
    public static async Task<bool> EmbeddedHostRunningAsync(CliServices services, CancellationToken cancellationToken) =>
        (await services.Provider.GetRequiredService<WorkerStore>().LiveStagesAsync(cancellationToken)).Contains(ServedStages.Orchestrator);

    /// <summary>
    /// Sends a start or resume request, says so (<paramref name="announce"/>) and, with <paramref name="wait"/>, shows
    /// the pipeline until it ends. On the in-memory transport with no embedded host running, the request waits in the
    /// state database for one: with <paramref name="wait"/> this process hosts it for the request's pipeline, without,
    /// a note says that the pipeline runs once `nvdino serve` does.
    /// </summary>
    public static async Task<int> SendAsync<T>(CliServices services, string? configFile, T request, Guid pipelineId, bool wait, Action announce,
        CancellationToken cancellationToken) where T : class
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(announce);
        var noHost = services.Control.Transport == TransportKind.InMemory && !await EmbeddedHostRunningAsync(services, cancellationToken);
        if (wait && noHost)
        {
            // No embedded host to hand the request to: be the host for this one pipeline.
            using var host = EmbeddedHost.Build(configFile);
            await host.StartAsync(cancellationToken);
            try
            {
                await services.Control.SendAsync(request, cancellationToken);
                announce();
                return await WaitAsync(services, pipelineId, cancellationToken);
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        }
        if (noHost)
        {
            Console.Error.WriteLine("note: no embedded host is running; the pipeline runs when `nvdino serve` does (or use --wait).");
        }
        await services.Control.SendAsync(request, cancellationToken);
        announce();
        return wait ? await WaitAsync(services, pipelineId, cancellationToken) : 0;
    }

    /// <summary>Shows progress until the pipeline ends; exit code 0 when Done, 1 otherwise.</summary>
    public static async Task<int> WaitAsync(CliServices services, Guid pipelineId, CancellationToken cancellationToken,
        bool stopWhenNoWorker = false)
    {
        var interactive = !Console.IsOutputRedirected;
        var lastText = "";
        var missingSince = DateTime.UtcNow;
        while (true)
        {
            var view = await services.Reader.ReadAsync(pipelineId, cancellationToken);
            if (view is null)
            {
                if (DateTime.UtcNow - missingSince > TimeSpan.FromMinutes(2))
                {
                    throw new CliException($"Pipeline {pipelineId} did not appear in the state database; is a host running?");
                }
            }
            else
            {
                var text = PipelineRendering.Render(view, bars: true);
                if (text != lastText)
                {
                    if (interactive && lastText.Length > 0)
                    {
                        Console.Write($"\u001b[{lastText.Count(c => c == '\n')}A\u001b[J");
                    }
                    Console.Write(text);
                    lastText = text;
                }
                if (view.Finished)
                {
                    return view.Status == JobStatus.Done ? 0 : 1;
                }
                if (stopWhenNoWorker && view.Steps.FirstOrDefault(s => s.Waiting?.StartsWith("waiting for a worker", StringComparison.Ordinal) == true) is { } stuck)
                {
                    Console.Error.WriteLine($"{stuck.Step}: this build hosts no {stuck.Stage} worker, so the pipeline cannot go past {stuck.Stage}.");
                    return 1;
                }
            }
            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
        }
    }
}

/// <summary>Turns what users type (paths, file:// and s3:// URIs) into the URIs messages carry.</summary>
public static class DataUris
{
    public static Uri Parse(string value, string option)
    {
        if (value.StartsWith("s3://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var s3) || string.IsNullOrEmpty(s3.Host))
            {
                throw new CliException($"{option}: '{value}' is not a valid s3://bucket/key URI.");
            }
            return s3;
        }
        string path;
        if (value.StartsWith("file://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var file))
            {
                throw new CliException($"{option}: '{value}' is not a valid file:// URI.");
            }
            path = file.LocalPath;
        }
        else if (value.Contains("://", StringComparison.Ordinal))
        {
            throw new CliException($"{option}: '{value}' uses an unsupported scheme; use a path, file:// or s3://.");
        }
        else
        {
            path = Path.GetFullPath(value);
        }
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            throw new CliException($"{option}: '{path}' does not exist.");
        }
        return FromPath(Directory.Exists(path) ? Path.TrimEndingDirectorySeparator(path) + "/" : path);
    }

    /// <summary>
    /// A file:// URI whose text carries the scheme: <c>new Uri("/a/b")</c> prints as "/a/b" and comes
    /// back from JSON as a relative URI.
    /// </summary>
    public static Uri FromPath(string path) => new(new UriBuilder(Uri.UriSchemeFile, "") { Path = Path.GetFullPath(path) + (path.EndsWith('/') ? "/" : "") }.Uri.AbsoluteUri);
}
