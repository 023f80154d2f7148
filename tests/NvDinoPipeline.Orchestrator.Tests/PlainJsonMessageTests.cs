using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>
/// A client that is not MassTransit (any AMQP library) sends plain JSON to the orchestrator's queue on a real RabbitMQ:
/// the message type in the MT-MessageType header, the spec holding only the keys it changes.
/// </summary>
public sealed class PlainJsonMessageTests(RabbitMqFixture broker) : IClassFixture<RabbitMqFixture>, IDisposable
{
    private const string ErrorQueue = Queues.Orchestrator + "_error";
    private const string SkippedQueue = Queues.Orchestrator + "_skipped";
    private static readonly object Overrides = new { train = new { num_epochs = 3, optim = new { warmup_epochs = 0 } } };
    private readonly TempDirectory _folder = new("nvdino-plain-json");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Plain_messages_of_two_types_each_reach_only_their_own_consumer()
    {
        var standIns = new StandIns();
        var releaseTraining = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        standIns.Before[PipelineStage.Training] = (_, cancellationToken) => releaseTraining.Task.WaitAsync(cancellationToken);
        using var host = await StartHostAsync(standIns);
        var errorsBefore = await broker.QueueDepthAsync(ErrorQueue) ?? 0;
        var kept = Guid.NewGuid();
        var canceled = Guid.NewGuid();

        await PublishAsync(nameof(StartPipeline), StartBody(kept, Overrides));
        await PublishAsync(nameof(StartPipeline), StartBody(canceled, Overrides));
        await WaitForAsync(host, kept, (_, jobs) => jobs.Any(j => j.Step == "train"));
        await WaitForAsync(host, canceled, (_, jobs) => jobs.Any(j => j.Step == "train"));
        // Run by every consumer, this cancel would fail as a start (no trainDataUri) and a start would cancel its pipeline.
        await PublishAsync(nameof(CancelPipeline), JsonSerializer.Serialize(new { pipelineId = canceled, reason = "from python" }));
        await WaitForAsync(host, canceled, (p, _) => p.Status == JobStatus.Canceled);
        releaseTraining.SetResult();
        var (pipeline, _) = await WaitForAsync(host, kept, (p, _) => p.Status == JobStatus.Done);

        var expected = SpecLoader.CreateDefault().Resolve([], ["train.num_epochs=3", "train.optim.warmup_epochs=0"]).ToJson();
        Assert.Equal(expected, pipeline.Spec);
        Assert.Equal(errorsBefore, await broker.QueueDepthAsync(ErrorQueue) ?? 0);
        Assert.Equal(0, await broker.QueueDepthAsync(SkippedQueue) ?? 0);
        await host.StopAsync();
    }

    [Fact]
    public async Task Bad_plain_messages_are_refused_with_a_reason_and_the_next_valid_start_completes()
    {
        using var host = await StartHostAsync(new StandIns());
        await broker.PurgeAsync(ErrorQueue);
        var untyped = Guid.NewGuid();
        var badSpec = Guid.NewGuid();
        var unknownType = Guid.NewGuid();

        await PublishAsync(nameof(StartPipeline), "this is not JSON");
        await PublishAsync(nameof(StartPipeline), JsonSerializer.Serialize(new { pipelineId = Guid.NewGuid(), spec = new { } }));
        await PublishAsync(messageType: null, StartBody(untyped, Overrides));
        await PublishAsync("StartPipelines", StartBody(unknownType, Overrides));
        await PublishAsync(nameof(StartPipeline), StartBody(badSpec, new { train = new { num_epoch = 3, seed = "abc" } }));

        var refused = await WaitForRefusedAsync(4);
        Assert.Contains("'this is not JSON' is an invalid JSON literal", ReasonFor(refused, body => body == "this is not JSON"));
        Assert.Contains("missing required properties", ReasonFor(refused, body => body.Contains("\"spec\":{}", StringComparison.Ordinal)));
        Assert.Contains("requestedAt", ReasonFor(refused, body => body.Contains("\"spec\":{}", StringComparison.Ordinal)));
        Assert.Contains("names no message type", ReasonFor(refused, body => body.Contains(untyped.ToString(), StringComparison.Ordinal)));
        Assert.Contains("no consumer on pipeline-orchestrator handles urn:message:NvDinoPipeline.Contracts:StartPipelines",
            ReasonFor(refused, body => body.Contains(unknownType.ToString(), StringComparison.Ordinal)));
        var (failed, _) = await WaitForAsync(host, badSpec, (p, _) => p.Status == JobStatus.Error);
        Assert.Contains("train.num_epoch: unknown key; did you mean 'train.num_epochs'?", failed.ErrorReason);
        Assert.Contains("train.seed:", failed.ErrorReason);
        Assert.Null((await ReadAsync(host, untyped)).Pipeline);

        var valid = Guid.NewGuid();
        await PublishAsync(nameof(StartPipeline), StartBody(valid, Overrides));
        await WaitForAsync(host, valid, (p, _) => p.Status == JobStatus.Done);
        Assert.Equal(0, await broker.QueueDepthAsync(SkippedQueue) ?? 0);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_start_with_only_spec_overrides_takes_its_data_from_the_images_dir_keys()
    {
        using var host = await StartHostAsync(new StandIns());
        var fromKeys = Guid.NewGuid();
        var noData = Guid.NewGuid();

        await PublishAsync(nameof(StartPipeline), JsonSerializer.Serialize(new
        {
            pipelineId = fromKeys,
            spec = new Dictionary<string, object>
            {
                ["train.num_epochs"] = 1,
                ["train.optim.warmup_epochs"] = 0,
                ["dataset.train_dataset.images_dir"] = "file:///data/images_train.tar.gz",
                ["dataset.test_dataset.images_dir"] = "s3://datasets/test/",
            },
            requestedAt = DateTimeOffset.UtcNow,
        }));
        await PublishAsync(nameof(StartPipeline), JsonSerializer.Serialize(new { pipelineId = noData, spec = new { }, requestedAt = DateTimeOffset.UtcNow }));

        var (pipeline, jobs) = await WaitForAsync(host, fromKeys, (p, _) => p.Status == JobStatus.Done);
        Assert.Equal("file:///data/images_train.tar.gz", pipeline.TrainDataUri);
        Assert.Equal("s3://datasets/test/", pipeline.TestDataUri);
        Assert.Contains(jobs, job => job.Step == "inference");
        var (failed, _) = await WaitForAsync(host, noData, (p, _) => p.Status == JobStatus.Error);
        Assert.Contains("names no training data", failed.ErrorReason);
        Assert.Contains("dataset.train_dataset.images_dir", failed.ErrorReason);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_results_queue_is_declared_on_acceptance_and_receives_the_final_event_as_plain_json()
    {
        var standIns = new StandIns();
        var releaseTraining = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        standIns.Before[PipelineStage.Training] = (_, cancellationToken) => releaseTraining.Task.WaitAsync(cancellationToken);
        using var host = await StartHostAsync(standIns);
        var completed = Guid.NewGuid();
        var failed = Guid.NewGuid();
        var queue = $"results-{completed:N}";

        await PublishAsync(nameof(StartPipeline), StartBody(completed, Overrides, queue));
        await WaitForAsync(host, completed, (_, jobs) => jobs.Any(j => j.Step == "train"));
        Assert.Equal(0, await broker.QueueDepthAsync(queue));
        await PublishAsync(nameof(StartPipeline), StartBody(failed, new { train = new { num_epoch = 3 } }, queue));
        await WaitForAsync(host, failed, (p, _) => p.Status == JobStatus.Error);
        releaseTraining.SetResult();
        await WaitForAsync(host, completed, (p, _) => p.Status == JobStatus.Done);

        var messages = await WaitForMessagesAsync(queue, 2);
        var byType = messages.ToDictionary(m => m.Headers.GetProperty("MT-MessageType").GetString()!, m => JsonDocument.Parse(m.Body).RootElement);
        var failure = byType["urn:message:NvDinoPipeline.Contracts:PipelineFailed"];
        Assert.Equal(failed, failure.GetProperty("pipelineId").GetGuid());
        Assert.Equal("Staging", failure.GetProperty("stage").GetString());
        Assert.Contains("train.num_epoch", failure.GetProperty("reason").GetString());
        var completion = byType["urn:message:NvDinoPipeline.Contracts:PipelineCompleted"];
        Assert.Equal(completed, completion.GetProperty("pipelineId").GetGuid());
        Assert.True(completion.TryGetProperty("deployArtifactUri", out _), completion.ToString());
        await host.StopAsync();
    }

    private async Task<IReadOnlyList<(JsonElement Headers, string Body)>> WaitForMessagesAsync(string queue, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((await broker.QueueDepthAsync(queue) ?? 0) < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        var messages = await broker.PeekAsync(queue, count + 1);
        Assert.Equal(count, messages.Count);
        return messages;
    }

    private async Task<Microsoft.Extensions.Hosting.IHost> StartHostAsync(StandIns standIns)
    {
        var settings = EmbeddedSettings(_folder.Path);
        settings["Messaging:Transport"] = "RabbitMq";
        settings["Messaging:RabbitMq"] = broker.Uri.ToString();
        var host = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        await host.Services.GetRequiredService<IBusControl>().WaitUntilReadyAsync(CancellationToken.None);
        return host;
    }

    private static string StartBody(Guid pipelineId, object spec, string? resultsQueue = null) => JsonSerializer.Serialize(new
    {
        pipelineId,
        trainDataUri = "file:///data/images_train.tar.gz",
        testDataUri = "file:///data/images_test.tar.gz",
        spec,
        resultsQueue,
        requestedAt = DateTimeOffset.UtcNow,
    });

    private Task PublishAsync(string? messageType, string body) => broker.PublishRawAsync(Queues.Orchestrator, body, "application/json",
        messageType is null ? null : new Dictionary<string, string> { ["MT-MessageType"] = $"urn:message:NvDinoPipeline.Contracts:{messageType}" });

    /// <summary>The messages in the orchestrator's error queue, once it holds <paramref name="count"/>: each one's reason (fault header) and body.</summary>
    private async Task<IReadOnlyList<(string Reason, string Body)>> WaitForRefusedAsync(int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((await broker.QueueDepthAsync(ErrorQueue) ?? 0) < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }
        var messages = (await broker.PeekAsync(ErrorQueue, count + 1))
            .Select(m => (m.Headers.TryGetProperty("MT-Fault-Message", out var reason) ? reason.GetString() ?? "" : "", m.Body)).ToList();
        Assert.True(messages.Count == count, $"{ErrorQueue} holds {messages.Count} messages, not {count}: {string.Join(Environment.NewLine, messages)}");
        return messages;
    }

    /// <summary>The reason the one refused message whose body matches was refused for.</summary>
    private static string ReasonFor(IReadOnlyList<(string Reason, string Body)> refused, Func<string, bool> body) =>
        Assert.Single(refused, m => body(m.Body)).Reason;
}
