using System.Text.Json;
using NvDinoPipeline.Orchestrator;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Cli.Tests;

/// <summary>
/// <c>nvdino spec resolve</c> prints what a client in another language may send as the spec of a plain JSON start: the
/// orchestrator stores the very bytes a command-line start with the same files and overrides stores.
/// </summary>
public sealed class SpecResolveTests(RabbitMqFixture broker) : IClassFixture<RabbitMqFixture>, IDisposable
{
    private readonly TempDirectory _home = new("nvdino-spec-resolve");

    public void Dispose() => _home.Dispose();

    [Fact]
    public async Task Spec_resolve_output_sent_as_the_spec_resolves_to_the_bytes_of_a_command_line_start()
    {
        var settings = EmbeddedSettings(_home.Path);
        settings["Messaging:Transport"] = "RabbitMq";
        settings["Messaging:RabbitMq"] = broker.Uri.ToString();
        // The orchestrator alone: the jobs it dispatches stay in their queues.
        using var orchestrator = Build(settings, p => p.AddOrchestrator());
        await orchestrator.StartAsync();
        try
        {
            var nvdino = new NvdinoProcess(_home.Path, new Dictionary<string, string>
            {
                ["Messaging__Transport"] = "RabbitMq",
                ["Messaging__RabbitMq"] = broker.Uri.ToString(),
                ["ArtifactStore__AllowedReadRoots__0"] = _home.Combine("data"),
            });
            Directory.CreateDirectory(_home.Combine("data"));
            var file = _home.Combine("data", "mine.yaml");
            File.WriteAllText(file, "train:\n  num_epochs: 7\n  optim:\n    lr: 0.000123\n    warmup_epochs: 2\nmodel:\n  backbone:\n    drop_path_rate: 0.25\n");
            string[] inputs = ["--spec", file, "--set", "train.seed=11", "--set", "dataset.transform.global_crops_scale=[0.4,1.0]"];

            var resolved = await nvdino.RunAsync(["spec", "resolve", .. inputs]);
            Assert.True(resolved.ExitCode == 0, resolved.Error);
            var fromCli = await nvdino.RunAsync(["pipeline", "start", "--train", _home.Combine("data"), .. inputs]);
            Assert.True(fromCli.ExitCode == 0, fromCli.Error);
            var plain = Guid.NewGuid();
            await broker.PublishRawAsync("pipeline-orchestrator", JsonSerializer.Serialize(new
            {
                pipelineId = plain,
                trainDataUri = new Uri(_home.Combine("data") + "/").AbsoluteUri,
                spec = resolved.Output.Trim(),
                requestedAt = DateTimeOffset.UtcNow,
            }), "application/json", new Dictionary<string, string> { ["MT-MessageType"] = "urn:message:NvDinoPipeline.Contracts:StartPipeline" });

            var (cliPipeline, _) = await WaitForAsync(orchestrator, Guid.Parse(fromCli.Output.Trim()), (_, jobs) => jobs.Count > 0);
            var (plainPipeline, _) = await WaitForAsync(orchestrator, plain, (_, jobs) => jobs.Count > 0);
            Assert.Equal(resolved.Output.Trim(), cliPipeline.Spec);
            Assert.Equal(cliPipeline.Spec, plainPipeline.Spec);
        }
        finally
        {
            // Stopped even when an assertion failed: a host left running would go on consuming from the shared virtual host.
            await orchestrator.StopAsync();
        }
    }
}
