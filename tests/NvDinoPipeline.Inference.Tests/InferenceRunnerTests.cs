using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Inference.Output;
using NvDinoPipeline.Inference.Tests.Support;

namespace NvDinoPipeline.Inference.Tests;

public sealed class InferenceRunnerTests : IAsyncLifetime
{
    private RunnerBed _bed = null!;
    private TinyVit _model = null!;

    public async Task InitializeAsync()
    {
        _bed = await RunnerBed.StartAsync();
        _model = TinyVit.Create(_bed.Folder.Combine("model"));
    }

    public async Task DisposeAsync() => await _bed.DisposeAsync();

    [Fact]
    public async Task Embeddings_equal_the_onnx_model_outputs_for_the_same_images()
    {
        var images = TestImages.Make(11);
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("test", "shards"), images);
        var command = _bed.Command(_model, shards, overrides: "inference.batch_size=4");

        var result = await _bed.RunAsync(command);

        var stored = await Outputs.ReadBinaryAsync(result.Completed.EmbeddingsUri.LocalPath, result.Completed.IndexUri.LocalPath, TinyVit.Dimension);
        Assert.Equal(images.Select(i => i.Path), stored.Select(s => s.InputPath));
        Assert.Equal(images.Select(i => i.Sha256), stored.Select(s => s.ContentSha256));
        for (var i = 0; i < images.Count; i++)
        {
            var expected = _model.Reference(images[i]);
            Assert.True(Outputs.Cosine(expected, stored[i].Embedding) >= 0.9999, $"{images[i].Path}: cosine {Outputs.Cosine(expected, stored[i].Embedding)}");
            Assert.All(expected.Zip(stored[i].Embedding), pair => Assert.Equal(pair.First, pair.Second, 1e-4f));
        }
        Assert.Equal(11, result.Completed.EmbeddedCount);
        Assert.Equal(0, result.Completed.FailedCount);
        Assert.Equal(TinyVit.Dimension, result.Completed.Dimension);
    }

    [Fact]
    public async Task Csv_binary_file_and_published_batches_hold_identical_embeddings()
    {
        var images = TestImages.Make(7, seed: 2).Select((image, i) => i == 3 ? image with { Path = "odd, \"quoted\" name.png" } : image).ToList();
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("test", "shards"), images);
        var command = _bed.Command(_model, shards, overrides: "inference.batch_size=3");

        var result = await _bed.RunAsync(command);

        var completed = result.Completed;
        var csv = Outputs.ReadCsv(completed.CsvUri.LocalPath);
        var binary = await Outputs.ReadBinaryAsync(completed.EmbeddingsUri.LocalPath, completed.IndexUri.LocalPath, completed.Dimension);
        var published = _bed.Published(command.JobId);
        Assert.Equal(3, published.Count);
        Assert.Equal([0, 1, 2], published.Select(b => b.BatchIndex).Order());
        Assert.All(published, b => Assert.Equal(command.PipelineId, b.PipelineId));
        var messages = published.SelectMany(b => b.Items).ToDictionary(r => r.Key);

        Assert.Equal(images.Select(i => i.Path), csv.Select(r => r.Path));
        Assert.Equal(images.Count, binary.Count);
        Assert.Equal(images.Count, messages.Count);
        for (var i = 0; i < images.Count; i++)
        {
            Assert.Equal(binary[i].Embedding, csv[i].Features);
            var message = messages[binary[i].Key];
            Assert.Equal(binary[i].InputPath, message.InputPath);
            Assert.Equal(binary[i].ContentSha256, message.ContentSha256);
            Assert.Equal(binary[i].Embedding, message.Embedding);
        }
        Assert.Equal(TinyVit.Dimension, result.Metrics[EmbeddingFiles.DimensionMetric]);
        Assert.Equal(completed.CsvUri, result.Artifacts[EmbeddingFiles.CsvArtifact]);
        Assert.Equal(completed.EmbeddingsUri, result.Artifacts[EmbeddingFiles.EmbeddingsArtifact]);
        Assert.Equal(completed.IndexUri, result.Artifacts[EmbeddingFiles.IndexArtifact]);
        Assert.Equal(new Uri(command.OutputUri, "inference.csv"), completed.CsvUri);
        Assert.Equal(new FileInfo(completed.EmbeddingsUri.LocalPath).Length, images.Count * TinyVit.Dimension * sizeof(float));
    }

    [Fact]
    public async Task Undecodable_files_are_reported_and_skipped_and_the_job_completes()
    {
        var images = TestImages.Make(5, seed: 3, prefix: "good");
        var folder = TestImages.WriteFiles(_bed.Folder.Combine("test", "images"), images);
        var truncated = images[0].Png[..(images[0].Png.Length / 2)];
        Directory.CreateDirectory(_bed.Folder.Combine("test", "images", "bad"));
        File.WriteAllBytes(_bed.Folder.Combine("test", "images", "bad", "truncated.png"), truncated);
        File.WriteAllText(_bed.Folder.Combine("test", "images", "bad", "notes.jpg"), "this is text, not a JPEG");
        File.WriteAllBytes(_bed.Folder.Combine("test", "images", "bad", "empty.png"), []);
        File.WriteAllText(_bed.Folder.Combine("test", "images", "README.txt"), "not an input: no image extension");
        var command = _bed.Command(_model, folder, overrides: "inference.batch_size=2");

        var result = await _bed.RunAsync(command);

        Assert.Equal(5, result.Completed.EmbeddedCount);
        Assert.Equal(3, result.Completed.FailedCount);
        var failures = Outputs.ReadFailures(result.Artifacts[EmbeddingFiles.FailuresArtifact].LocalPath);
        Assert.Equal(["bad/empty.png", "bad/notes.jpg", "bad/truncated.png"], failures.Select(f => f.InputPath));
        Assert.Contains("empty", failures[0].Reason);
        Assert.Contains("not a JPEG, PNG", failures[1].Reason);
        Assert.Contains("cut short", failures[2].Reason);
        var csv = Outputs.ReadCsv(result.Completed.CsvUri.LocalPath);
        Assert.Equal(images.Select(i => i.Path), csv.Select(r => r.Path));
        Assert.Equal(5, _bed.Published(command.JobId).Sum(b => b.Items.Count));
        for (var i = 0; i < images.Count; i++)
        {
            Assert.True(Outputs.Cosine(_model.Reference(images[i]), csv[i].Features) >= 0.9999);
        }
    }

    [Fact]
    public async Task A_redelivered_job_publishes_every_result_again_under_the_same_key()
    {
        var images = TestImages.Make(6, seed: 4);
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("test", "shards"), images);
        var command = _bed.Command(_model, shards, overrides: "inference.batch_size=4");

        await _bed.RunAsync(command);
        var first = _bed.Published(command.JobId).SelectMany(b => b.Items).ToList();
        await _bed.RunAsync(command with { Spec = _bed.Command(_model, shards, overrides: "inference.batch_size=5").Spec });
        var all = _bed.Published(command.JobId).SelectMany(b => b.Items).ToList();

        Assert.Equal(12, all.Count);
        var keys = all.GroupBy(r => r.Key).ToList();
        Assert.Equal(6, keys.Count);
        Assert.All(keys, group =>
        {
            Assert.Equal(2, group.Count());
            Assert.Single(group.Select(r => r.InputPath).Distinct());
            Assert.Equal(group.First().Embedding, group.Last().Embedding);
        });
        Assert.Equal(first.Select(r => r.Key).Order(), keys.Select(k => k.Key).Order());
        var other = _bed.Command(_model, shards);
        await _bed.RunAsync(other);
        Assert.Empty(_bed.Published(other.JobId).SelectMany(b => b.Items).Select(r => r.Key).Intersect(keys.Select(k => k.Key)));
    }

    [Fact]
    public async Task Overlapped_and_turn_taking_pre_processing_give_the_same_results()
    {
        var images = TestImages.Make(9, seed: 8);
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("test", "shards"), images);
        await using var overlapped = await RunnerBed.StartAsync(options => options.OverlapPreprocessing = OverlapMode.Always, _bed.Folder.Path);
        await using var turns = await RunnerBed.StartAsync(options => options.OverlapPreprocessing = OverlapMode.Never, _bed.Folder.Path);

        var first = await overlapped.RunAsync(overlapped.Command(_model, shards, overrides: "inference.batch_size=2"));
        var second = await turns.RunAsync(turns.Command(_model, shards, overrides: "inference.batch_size=2"));

        Assert.Equal(File.ReadAllBytes(first.Completed.EmbeddingsUri.LocalPath), File.ReadAllBytes(second.Completed.EmbeddingsUri.LocalPath));
        Assert.Equal(File.ReadAllText(first.Completed.CsvUri.LocalPath), File.ReadAllText(second.Completed.CsvUri.LocalPath));
    }

    [Fact]
    public async Task A_fixed_batch_model_embeds_a_last_batch_shorter_than_its_batch()
    {
        var fixedModel = TinyVit.Create(_bed.Folder.Combine("fixed"), batchSize: 4);
        var images = TestImages.Make(6, seed: 5);
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("test", "shards"), images);

        var result = await _bed.RunAsync(_bed.Command(fixedModel, shards, overrides: "inference.batch_size=3"));

        var stored = await Outputs.ReadBinaryAsync(result.Completed.EmbeddingsUri.LocalPath, result.Completed.IndexUri.LocalPath, TinyVit.Dimension);
        Assert.Equal(6, stored.Count);
        for (var i = 0; i < images.Count; i++)
        {
            Assert.True(Outputs.Cosine(fixedModel.Reference(images[i]), stored[i].Embedding) >= 0.9999);
        }
    }

    [Fact]
    public async Task The_summary_and_metrics_say_the_model_ran_on_the_cpu_when_onnx_runtime_has_no_gpu_provider()
    {
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("test", "shards"), TestImages.Make(2));

        var result = await _bed.RunAsync(_bed.Command(_model, shards));

        var summary = System.Text.Json.JsonSerializer.Deserialize<InferenceSummary>(
            File.ReadAllText(result.Artifacts[EmbeddingFiles.SummaryArtifact].LocalPath), InferenceSummary.Json)!;
        Assert.Contains(ExecutionProviders.CpuProvider, summary.AvailableExecutionProviders);
        if (!summary.AvailableExecutionProviders.Contains(ExecutionProviders.CudaProvider)
            && !summary.AvailableExecutionProviders.Contains(ExecutionProviders.TensorRtProvider))
        {
            Assert.Equal("cpu", summary.ExecutionProvider);
            Assert.Contains("neither TensorRT nor CUDA", summary.ExecutionProviderReason);
        }
        Assert.Equal(2, summary.Embedded);
        Assert.True(result.Metrics["images_per_second"] > 0);
    }

    [Fact]
    public async Task A_tensorrt_target_without_the_tensorrt_provider_fails_with_what_was_looked_for()
    {
        if (ExecutionProviders.Available().Contains(ExecutionProviders.TensorRtProvider))
        {
            return;
        }
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("test", "shards"), TestImages.Make(1));
        var command = _bed.Command(_model, shards, target: DeployedModelReference.TensorRtTarget) with
        {
            DeployArtifactUri = TestImages.FileUri(_bed.Folder.Combine("engine", "model.engine")),
        };

        var failure = await Assert.ThrowsAsync<StageUnavailableException>(() => _bed.RunAsync(command));

        Assert.Contains(ExecutionProviders.TensorRtProvider, failure.Message);
        Assert.Contains("inference.execution_provider=cuda or cpu", failure.Message);
    }

    [Fact]
    public async Task A_tensorrt_target_asked_to_run_on_the_cpu_runs_the_exported_onnx_model()
    {
        var images = TestImages.Make(3, seed: 6);
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("test", "shards"), images);
        var command = _bed.Command(_model, shards, target: DeployedModelReference.TensorRtTarget, overrides: "inference.execution_provider=cpu") with
        {
            DeployArtifactUri = TestImages.FileUri(_bed.Folder.Combine("engine", "model.engine")),
        };

        var result = await _bed.RunAsync(command);

        var stored = await Outputs.ReadBinaryAsync(result.Completed.EmbeddingsUri.LocalPath, result.Completed.IndexUri.LocalPath, TinyVit.Dimension);
        Assert.True(Outputs.Cosine(_model.Reference(images[2]), stored[2].Embedding) >= 0.9999);
    }

    [Fact]
    public async Task A_dataset_without_images_fails_naming_the_folder()
    {
        Directory.CreateDirectory(_bed.Folder.Combine("test", "empty"));
        File.WriteAllText(_bed.Folder.Combine("test", "empty", "notes.txt"), "nothing to embed");
        var folder = new Uri(_bed.Folder.Combine("test", "empty") + "/").AbsoluteUri;

        var failure = await Assert.ThrowsAsync<StageInputException>(() => _bed.RunAsync(_bed.Command(_model, folder)));

        Assert.Contains(folder, failure.Message);
        Assert.Contains("neither staged shards", failure.Message);
    }

    [Fact]
    public async Task Metadata_that_does_not_match_the_model_fails_before_any_image_is_read()
    {
        var shards = await TestImages.WriteShardsAsync(_bed.Folder.Combine("test", "shards"), TestImages.Make(1));
        var wrong = _model.Metadata with { Outputs = [new NvDinoPipeline.Deployment.TensorDescription("embedding", [-1, TinyVit.Dimension])] };
        var wrongPath = _bed.Folder.Combine("model", "wrong.json");
        File.WriteAllText(wrongPath, wrong.ToJson());

        var failure = await Assert.ThrowsAsync<StageInputException>(() =>
            _bed.RunAsync(_bed.Command(_model, shards) with { ModelMetadataUri = TestImages.FileUri(wrongPath) }));

        Assert.Contains("model.onnx", failure.Message);
        Assert.Contains("'embedding'", failure.Message);
        Assert.Empty(_bed.Harness.Published.Select<EmbeddingsBatch>());
    }
}
