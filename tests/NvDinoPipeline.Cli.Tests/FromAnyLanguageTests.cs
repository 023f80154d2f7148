using System.Diagnostics;
using System.Text.Json;
using NvDinoPipeline.Cli.Commands;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Cli.Tests;

/// <summary>
/// A client in another language against <c>nvdino serve</c> on a real RabbitMQ: the Python example of the README, with
/// pika, sending plain JSON.
/// </summary>
public sealed class FromAnyLanguageTests(RabbitMqFixture broker) : IClassFixture<RabbitMqFixture>, IDisposable
{
    private static readonly Lazy<string> Python = new(FindPythonWithPika);
    private const int TestImages = 6;
    private static readonly string Example = Repo.PathOf("examples", "python", "start_and_collect.py");
    private readonly TempDirectory _home = new("nvdino-any-language");

    public void Dispose() => _home.Dispose();

    [Fact]
    public async Task The_python_example_starts_with_overrides_and_collects_every_embedding_from_its_results_queue_after_the_end()
    {
        var train = DemoDataset.Write(_home.Combine("data", "train.tar.gz"), 32, seed: 1);
        var test = DemoDataset.Write(_home.Combine("data", "test.tar.gz"), TestImages, seed: 2);
        var nvdino = new NvdinoProcess(_home.Path, new Dictionary<string, string>
        {
            ["Messaging__Transport"] = "RabbitMq",
            ["Messaging__RabbitMq"] = broker.Uri.ToString(),
            ["ArtifactStore__AllowedReadRoots__0"] = _home.Combine("data"),
        });
        using var serve = nvdino.Start("serve");
        // Read as it comes: a full pipe would block the host's logging, and the tail explains a failure.
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        serve.OutputDataReceived += (_, line) => log.Enqueue(line.Data ?? "");
        serve.ErrorDataReceived += (_, line) => log.Enqueue(line.Data ?? "");
        serve.BeginOutputReadLine();
        serve.BeginErrorReadLine();
        try
        {
            await WaitForQueuesAsync(serve, "pipeline-orchestrator", "run-inference");
            var queue = $"python-results-{Guid.NewGuid():N}";
            string[] overrides = [.. DemoDataset.SpecOverrides.SelectMany(o => new[] { "--set", o })];

            var started = await RunPythonAsync(["start", "--train", new Uri(train).AbsoluteUri, "--test", new Uri(test).AbsoluteUri,
                "--results-queue", queue, .. overrides]);
            Assert.True(started.ExitCode == 0, started.Error);
            var id = Guid.Parse(started.Output.Trim());
            var status = await WaitForEndAsync(nvdino, id);
            Assert.True(status.GetProperty("status").GetString() == "Done", $"{status}{Environment.NewLine}{string.Join(Environment.NewLine, log.TakeLast(40))}");
            Assert.True(await WaitForDepthAsync(queue) > 0, $"nothing waits in {queue} for a client that connects after the end");

            var output = _home.Combine("embeddings.jsonl");
            var collected = await RunPythonAsync(["collect", "--results-queue", queue, "--out", output, "--timeout", "30"]);

            Assert.True(collected.ExitCode == 0, collected.Error);
            var summary = JsonDocument.Parse(collected.Error.Trim().Split('\n')[^1]).RootElement;
            Assert.Equal("PipelineCompleted", summary.GetProperty("event").GetString());
            Assert.Equal(id, summary.GetProperty("message").GetProperty("pipelineId").GetGuid());
            Assert.Equal(TestImages, summary.GetProperty("embeddings").GetInt32());
            var lines = File.ReadAllLines(output);
            Assert.Equal(TestImages, lines.Length);
            var dimensions = lines.Select(line => JsonDocument.Parse(line).RootElement.GetProperty("embedding").GetArrayLength()).Distinct().ToList();
            Assert.True(dimensions is [> 0], $"embedding lengths: {string.Join(", ", dimensions)}");
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
        }
    }

    private async Task WaitForQueuesAsync(Process serve, params string[] queues)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(90))
        {
            Assert.False(serve.HasExited, "nvdino serve exited");
            if ((await Task.WhenAll(queues.Select(broker.QueueDepthAsync))).All(depth => depth is not null))
            {
                return;
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"nvdino serve did not declare {string.Join(", ", queues)}.");
    }

    /// <summary>The depth of <paramref name="queue"/> once it is not zero, or zero after 30 s: the management API counts a few seconds late.</summary>
    private async Task<long> WaitForDepthAsync(string queue)
    {
        var deadline = Stopwatch.StartNew();
        long depth;
        while ((depth = await broker.QueueDepthAsync(queue) ?? 0) == 0 && deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(500);
        }
        return depth;
    }

    private static async Task<JsonElement> WaitForEndAsync(NvdinoProcess nvdino, Guid id)
    {
        var deadline = Stopwatch.StartNew();
        var last = "";
        while (deadline.Elapsed < TimeSpan.FromMinutes(8))
        {
            var result = await nvdino.RunAsync("pipeline", "status", id.ToString(), "--json");
            last = result.Output + result.Error;
            if (result.ExitCode == 0 && JsonDocument.Parse(result.Output).RootElement is var json
                && json.GetProperty("status").GetString() is "Done" or "Error" or "Canceled")
            {
                return json;
            }
            await Task.Delay(1000);
        }
        throw new TimeoutException($"Pipeline {id} did not end; last status: {last}");
    }

    private Task<CommandResult> RunPythonAsync(string[] args) =>
        CommandResult.RunAsync(new ProcessStartInfo(Python.Value, [Example, "--amqp", broker.Uri.ToString(), .. args]));

    /// <summary>
    /// The first of NVDINO_TEST_PYTHON, Debian's /usr/bin/python3 and the python3 on PATH that imports pika: a pyenv
    /// python3 earlier on PATH often lacks the Debian package.
    /// </summary>
    private static string FindPythonWithPika()
    {
        string[] candidates = [.. new[] { Environment.GetEnvironmentVariable("NVDINO_TEST_PYTHON"), "/usr/bin/python3", "python3" }.OfType<string>().Where(c => c.Length > 0)];
        foreach (var candidate in candidates)
        {
            try
            {
                using var probe = Process.Start(new ProcessStartInfo(candidate, ["-c", "import pika"]) { RedirectStandardError = true, UseShellExecute = false });
                if (probe is not null && probe.WaitForExit(TimeSpan.FromSeconds(30)) && probe.ExitCode == 0)
                {
                    return candidate;
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // Not installed: try the next one.
            }
        }
        throw new InvalidOperationException($"No Python interpreter here imports pika (tried {string.Join(", ", candidates)}). "
            + "Install Debian's python3-pika (./scripts/test.sh does when run as root) or set NVDINO_TEST_PYTHON to an interpreter that has pika.");
    }
}
