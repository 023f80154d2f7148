using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Cli;
using NvDinoPipeline.Cli.Commands;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Inference.Output;
using NvDinoPipeline.Inference.Tests.Support;
using NvDinoPipeline.Orchestrator;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Inference.Tests;

/// <summary>The worker as a host runs it: commands and requests over the bus, jobs in the state database.</summary>
public sealed class HostedInferenceTests : IAsyncLifetime
{
    private HostBed _bed = null!;
    private TinyVit _model = null!;

    public async Task InitializeAsync()
    {
        _bed = await HostBed.StartAsync();
        _model = TinyVit.Create(_bed.Folder.Combine("artifacts", "models", "export"));
    }

    public async Task DisposeAsync() => await _bed.DisposeAsync();

    [Fact]
    public async Task Embed_images_answers_with_the_deployed_models_embeddings_and_a_reason_for_each_image_it_could_not_use()
    {
        var pipelineId = await DeployAsync();
        var images = TestImages.Make(3, seed: 11, prefix: "uploads");
        TestImages.WriteFiles(_bed.Folder.Combine("artifacts"), images);
        File.WriteAllText(_bed.Folder.Combine("artifacts", "uploads", "broken.png"), "not a png");
        var outside = _bed.Folder.Combine("elsewhere.png");
        File.WriteAllBytes(outside, images[0].Png);
        var uris = images.Select(i => _bed.Root.Append(i.Path)).ToList();
        var broken = _bed.Root.Append("uploads/broken.png");
        var request = new EmbedImages
        {
            RequestId = NewId.NextGuid(),
            PipelineId = pipelineId,
            ImageUris = [uris[0], broken, uris[1], TestImages.FileUri(outside), uris[2]],
        };

        var client = _bed.Host.Services.GetRequiredService<IBus>().CreateRequestClient<EmbedImages>(Queues.Address(Queues.EmbedImages));
        var response = (await client.GetResponse<ImagesEmbedded>(request)).Message;

        Assert.Equal(request.RequestId, response.RequestId);
        Assert.Equal(uris.Select(u => u.ToString()), response.Items.Select(i => i.InputPath));
        for (var i = 0; i < images.Count; i++)
        {
            Assert.Equal(images[i].Sha256, response.Items[i].ContentSha256);
            Assert.True(Outputs.Cosine(_model.Reference(images[i]), response.Items[i].Embedding) >= 0.9999);
        }
        Assert.Equal(3, response.Items.Select(i => i.Key).Distinct().Count());
        Assert.Equal(2, response.Failures.Count);
        Assert.Contains("not a JPEG, PNG", response.Failures[broken.ToString()]);
        Assert.Contains("OnlineAllowedPrefixes", response.Failures[TestImages.FileUri(outside).ToString()]);
    }

    [Fact]
    public async Task Embed_images_for_a_pipeline_without_a_deployed_model_faults_with_the_reason()
    {
        var undeployed = NewId.NextGuid();
        await _bed.AddAsync(HostBed.Pipeline(undeployed, HostBed.Spec()));
        var client = _bed.Host.Services.GetRequiredService<IBus>().CreateRequestClient<EmbedImages>(Queues.Address(Queues.EmbedImages));

        var notDeployed = await Assert.ThrowsAsync<RequestFaultException>(() => client.GetResponse<ImagesEmbedded>(
            new EmbedImages { RequestId = NewId.NextGuid(), PipelineId = undeployed, ImageUris = [_bed.Root.Append("a.png")] }));
        var unknown = await Assert.ThrowsAsync<RequestFaultException>(() => client.GetResponse<ImagesEmbedded>(
            new EmbedImages { RequestId = NewId.NextGuid(), PipelineId = NewId.NextGuid(), ImageUris = [_bed.Root.Append("a.png")] }));

        Assert.Contains("has no deployed model yet", notDeployed.Fault!.Exceptions[0].Message);
        Assert.Contains("does not exist", unknown.Fault!.Exceptions[0].Message);
    }

    [Fact]
    public async Task A_run_inference_command_completes_the_job_and_results_follow_prints_each_embedding_once()
    {
        var pipelineId = NewId.NextGuid();
        var spec = HostBed.Spec("inference.batch_size=4");
        var images = TestImages.Make(9, seed: 12, prefix: "test");
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("artifacts", pipelineId.ToString(), "stage-test", "shards"), images);
        var jobId = NewId.NextGuid();
        var command = new RunInference
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = spec,
            OutputUri = _bed.Store.JobFolder(pipelineId, jobId),
            DeployArtifactUri = _model.ModelUri,
            Target = DeployedModelReference.OnnxRuntimeTarget,
            ModelMetadataUri = _model.MetadataUri,
            DatasetUri = new Uri(shards),
            ManifestUri = new Uri(new Uri(shards), "../manifest.jsonl"),
        };
        await _bed.AddAsync(HostBed.Pipeline(pipelineId, spec), HostBed.Job(pipelineId, PipelineStep.Inference, PipelineStage.Inference, spec, command));

        var endpoint = await _bed.Host.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Inference).Queue));
        await endpoint.Send(command);
        var job = await _bed.WaitForJobAsync(jobId, j => j.Status is JobStatus.Done or JobStatus.Error);
        Assert.Equal(JobStatus.Done, job.Status);
        var completed = JsonSerializer.Deserialize<InferenceCompleted>(job.Completion!)!;
        Assert.Equal(9, completed.EmbeddedCount);
        // A finished job's status line is its result, not its last progress report.
        Assert.StartsWith("9 of 9 images embedded (0 skipped), 32 values each", job.ProgressMessage);
        await WaitUntilAsync(() => _bed.Recorded.Completions.Any(c => c.JobId == jobId));
        await WaitUntilAsync(() => _bed.Recorded.Batches.Where(b => b.JobId == jobId).Sum(b => b.Items.Count) == 9);
        await _bed.SetPipelineStatusAsync(pipelineId, JobStatus.Done);

        var jsonl = new StringWriter();
        var csv = new StringWriter();
        await using (var services = CliServices.Create(_bed.WriteConfigFile()))
        {
            Assert.Equal(0, await ResultsCommands.FollowAsync(services, pipelineId, new ResultSink(jsonl), CancellationToken.None));
            Assert.Equal(0, await ResultsCommands.FollowAsync(services, pipelineId, new ResultSink(csv, ResultFormat.Csv), CancellationToken.None));
        }

        var lines = jsonl.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonSerializer.Deserialize<EmbeddingResult>(l, EmbeddingFiles.Json)!).ToList();
        var stored = await Outputs.ReadBinaryAsync(completed.EmbeddingsUri.LocalPath, completed.IndexUri.LocalPath, completed.Dimension);
        Assert.Equal(stored.Select(s => (s.Key, s.InputPath, s.ContentSha256)), lines.Select(l => (l.Key, l.InputPath, l.ContentSha256)));
        Assert.All(stored.Zip(lines), pair => Assert.Equal(pair.First.Embedding, pair.Second.Embedding));
        var published = _bed.Recorded.Batches.Where(b => b.JobId == jobId).SelectMany(b => b.Items).ToDictionary(i => i.Key);
        Assert.All(lines, line => Assert.Equal(published[line.Key].Embedding, line.Embedding));
        Assert.Equal(File.ReadAllText(completed.CsvUri.LocalPath), csv.ToString().ReplaceLineEndings("\n"));
    }

    private async Task<Guid> DeployAsync()
    {
        var pipelineId = NewId.NextGuid();
        var spec = HostBed.Spec();
        var engineJob = NewId.NextGuid();
        var command = new GenerateEngine
        {
            PipelineId = pipelineId,
            JobId = engineJob,
            Spec = spec,
            OutputUri = _bed.Store.JobFolder(pipelineId, engineJob),
            OnnxModelUri = _model.ModelUri,
            ModelMetadataUri = _model.MetadataUri,
        };
        var completion = new EngineGenerated
        {
            PipelineId = pipelineId,
            JobId = engineJob,
            ArtifactUri = _model.ModelUri,
            Target = DeployedModelReference.OnnxRuntimeTarget,
            Precision = "fp32",
            ModelMetadataUri = _model.MetadataUri,
            MinBatchSize = 1,
            OptBatchSize = 8,
            MaxBatchSize = 16,
        };
        await _bed.AddAsync(HostBed.Pipeline(pipelineId, spec),
            HostBed.Job(pipelineId, PipelineStep.Engine, PipelineStage.EngineGeneration, spec, command, JobStatus.Done, completion));
        return pipelineId;
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(20);
        }
    }
}
