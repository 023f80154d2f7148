using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Checkpoints;
using NvDinoPipeline.Cli;
using NvDinoPipeline.Cli.Commands;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Orchestrator;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Training;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.EndToEnd.Tests;

/// <summary>
/// Every real stage, from a train and a test archive to embeddings: on the embedded default, and
/// on RabbitMQ + S3 + PostgreSQL. The results in inference.csv, the binary embeddings file and the
/// results queue must be the same, and equal to the exported ONNX model's outputs.
/// </summary>
public sealed class WholePipelineTests(RabbitMqFixture broker, PostgresFixture database)
    : IClassFixture<RabbitMqFixture>, IClassFixture<PostgresFixture>, IDisposable
{
    private const int TestImages = 12;
    private readonly TempDirectory _folder = new("nvdino-e2e");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public Task Train_and_test_archives_become_embeddings_on_the_embedded_default() =>
        RunAsync(EmbeddedSettings(_folder.Path));

    [Fact]
    public async Task Train_and_test_archives_become_embeddings_on_rabbitmq_s3_and_postgres()
    {
        var s3 = TestServices.S3;
        var bucket = S3Fixture.NewBucketName();
        using (var client = new Amazon.S3.AmazonS3Client(s3.AccessKey, s3.SecretKey,
                   new Amazon.S3.AmazonS3Config { ServiceURL = s3.ServiceUrl.ToString(), ForcePathStyle = true }))
        {
            await client.PutBucketAsync(bucket);
        }
        var settings = EmbeddedSettings(_folder.Path);
        settings["Messaging:Transport"] = "RabbitMq";
        settings["Messaging:RabbitMq"] = broker.Uri.ToString();
        settings["State:Provider"] = "Postgres";
        settings["State:ConnectionString"] = database.ConnectionString;
        settings["ArtifactStore:Root"] = $"s3://{bucket}/artifacts/";
        settings["ArtifactStore:S3:ServiceUrl"] = s3.ServiceUrl.ToString();
        settings["ArtifactStore:S3:AccessKey"] = s3.AccessKey;
        settings["ArtifactStore:S3:SecretKey"] = s3.SecretKey;
        await RunAsync(settings, uploadTo: $"s3://{bucket}/artifacts/input/");
    }

    [Fact]
    public async Task With_distillation_the_deployed_model_is_the_distilled_student()
    {
        using var host = Build(EmbeddedSettings(_folder.Path), p => p.AddOrchestrator().AddAvailableWorkers());
        await host.StartAsync();
        var train = DemoDataset.Write(_folder.Combine("images_train.tar.gz"), 32, seed: 3);
        var test = DemoDataset.Write(_folder.Combine("images_test.tar.gz"), 4, seed: 4);
        var spec = SpecLoader.CreateDefault().Resolve(Array.Empty<string>(),
        [
            .. DemoDataset.SpecOverrides, "train.num_epochs=1", "pipeline.stages.distill=true",
            "model.backbone.teacher_type=vit_t", "model.backbone.student_type=vit_pico",
        ]);
        var start = new StartPipeline
        {
            PipelineId = NewId.NextGuid(), TrainDataUri = DataUris.FromPath(train), TestDataUri = DataUris.FromPath(test),
            Spec = spec.ToJson(), RequestedAt = DateTimeOffset.UtcNow,
        };
        await StartPipelineAsync(host, start);

        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId,
            (p, _) => p.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled, TimeSpan.FromMinutes(5));
        Assert.True(pipeline.Status == JobStatus.Done, $"pipeline {pipeline.Status}: {pipeline.FailedStage} {pipeline.ErrorReason}");

        Assert.Equal(jobs.Job("distill").Id, jobs.Job("export").ParentJobId);
        var store = host.Services.GetRequiredService<IArtifactStore>();
        var exported = Completion<ModelExported>(jobs.Job("export"));
        var metadataPath = await store.GetLocalPathAsync(exported.MetadataUri, _folder.Combine("check"), CancellationToken.None);
        var metadata = ModelMetadata.FromJson(await File.ReadAllTextAsync(metadataPath), metadataPath);
        Assert.Equal("vit_pico", metadata.Backbone.Type);
        Assert.Equal(4, Completion<InferenceCompleted>(jobs.Job("inference")).EmbeddedCount);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_small_patch_for_small_images_runs_through_every_stage()
    {
        using var host = Build(EmbeddedSettings(_folder.Path), p => p.AddOrchestrator().AddAvailableWorkers());
        await host.StartAsync();
        var train = DemoDataset.Write(_folder.Combine("images_train.tar.gz"), 32, seed: 5);
        var test = DemoDataset.Write(_folder.Combine("images_test.tar.gz"), 8, seed: 6);
        // 28 px at patch 4: 49 tokens a global crop and 9 a 12 px local crop, where patch 14 gives 4 and 1.
        var spec = SpecLoader.CreateDefault().Resolve(Array.Empty<string>(),
        [
            .. DemoDataset.SpecOverrides, "train.num_epochs=1", "model.backbone.patch_size=4", "dataset.transform.local_crops_size=12",
        ]);
        var start = new StartPipeline
        {
            PipelineId = NewId.NextGuid(), TrainDataUri = DataUris.FromPath(train), TestDataUri = DataUris.FromPath(test),
            Spec = spec.ToJson(), RequestedAt = DateTimeOffset.UtcNow,
        };
        await StartPipelineAsync(host, start);

        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId,
            (p, _) => p.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled, TimeSpan.FromMinutes(5));
        Assert.True(pipeline.Status == JobStatus.Done, $"pipeline {pipeline.Status}: {pipeline.FailedStage} {pipeline.ErrorReason}");

        var store = host.Services.GetRequiredService<IArtifactStore>();
        var exported = Completion<ModelExported>(jobs.Job("export"));
        var metadataPath = await store.GetLocalPathAsync(exported.MetadataUri, _folder.Combine("check"), CancellationToken.None);
        var metadata = ModelMetadata.FromJson(await File.ReadAllTextAsync(metadataPath), metadataPath);
        Assert.Equal((4, 28), (metadata.Backbone.PatchSize, metadata.Backbone.TrainedImageSize));
        Assert.InRange(exported.MinCosine, 0.9999, 1.0 + 1e-9);
        Assert.Equal(8, Completion<InferenceCompleted>(jobs.Job("inference")).EmbeddedCount);
        var evaluated = Completion<ModelEvaluated>(jobs.Job("evaluate"));
        Assert.True(evaluated.Evaluated, evaluated.Reason);
        await host.StopAsync();
    }

    [Fact]
    public async Task An_automl_search_runs_its_trials_on_two_training_workers_at_once_and_deploys_the_best()
    {
        var settings = EmbeddedSettings(_folder.Path);
        settings["Messaging:Transport"] = "RabbitMq";
        settings["Messaging:RabbitMq"] = broker.Uri.ToString();
        settings["State:Provider"] = "Postgres";
        settings["State:ConnectionString"] = database.ConnectionString;
        using var host = Build(settings, p => p.AddOrchestrator().AddAvailableWorkers());
        using var secondTrainer = Build(settings, p => p.AddTrainingWorker());
        await host.StartAsync();
        await secondTrainer.StartAsync();
        var train = DemoDataset.Write(_folder.Combine("images_train.tar.gz"), 32, seed: 7);
        var test = DemoDataset.Write(_folder.Combine("images_test.tar.gz"), 4, seed: 8);
        // Hyperband with automl_r 3 and automl_nu 3: three trials of one epoch, the best resumed to three, then two of three.
        var spec = SpecLoader.CreateDefault().Resolve(Array.Empty<string>(),
        [
            .. DemoDataset.SpecOverrides, "train.num_epochs=1", "automl_policy=auto", "automl.automl_algorithm=hyperband",
            "automl.automl_r=3", "automl.automl_nu=3", "automl.held_out_fraction=0.25", "automl.automl_hyperparameters=[train.optim.lr]",
            "automl.automl_delete_intermediate_ckpt=true",
        ]);
        var start = new StartPipeline
        {
            PipelineId = NewId.NextGuid(), TrainDataUri = DataUris.FromPath(train), TestDataUri = DataUris.FromPath(test),
            Spec = spec.ToJson(), RequestedAt = DateTimeOffset.UtcNow,
        };
        await StartPipelineAsync(host, start);

        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId,
            (p, _) => p.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled, TimeSpan.FromMinutes(8));
        Assert.True(pipeline.Status == JobStatus.Done, $"pipeline {pipeline.Status}: {pipeline.FailedStage} {pipeline.ErrorReason}");

        var trials = jobs.Where(j => PipelineStep.IsTrialStep(j.Step)).ToList();
        Assert.Equal(6, trials.Count);
        Assert.All(trials, t => Assert.Equal(JobStatus.Done, t.Status));
        // Both training workers took trials, and two trials ran at the same time.
        Assert.Equal(2, trials.Select(t => t.WorkerId).Distinct().Count());
        Assert.Contains(trials, a => trials.Any(b => b.Id != a.Id && a.StartedAt < b.CompletedAt && b.StartedAt < a.CompletedAt));
        foreach (var trial in trials)
        {
            var completed = Completion<TrainingCompleted>(trial);
            Assert.InRange(completed.Metrics["automl_knn_top1"], 0, 1);
            Assert.Equal(8, completed.Metrics["automl_held_out_images"]);
            Assert.Equal(24, completed.Metrics["images"]);
        }
        var promoted = trials.Single(t => JsonSerializer.Deserialize<TrainModel>(t.Command)!.Trial!.Rung == 1);
        Assert.Equal(3, Completion<TrainingCompleted>(promoted).Epochs);
        var search = jobs.Job("train");
        Assert.Equal(JobStatus.Done, search.Status);
        var best = trials.Single(t => t.Id == jobs.Job("export").ParentJobId);
        // Hyperband's winner: the best score among each trial's last rung (a promoted trial's rung-0 score is superseded).
        var lastRungs = trials.GroupBy(t => JsonSerializer.Deserialize<TrainModel>(t.Command)!.Trial!.Number)
            .Select(g => g.MaxBy(t => JsonSerializer.Deserialize<TrainModel>(t.Command)!.Trial!.Rung)!);
        Assert.Equal(lastRungs.Max(t => Completion<TrainingCompleted>(t).Metrics[AutomlTrial.ScoreMetric]),
            Completion<TrainingCompleted>(best).Metrics[AutomlTrial.ScoreMetric]);
        Assert.Equal(4, Completion<InferenceCompleted>(jobs.Job("inference")).EmbeddedCount);
        // automl_delete_intermediate_ckpt: only the winner's job keeps checkpoints; every trial keeps its metrics.
        var store = host.Services.GetRequiredService<IArtifactStore>();
        foreach (var trial in trials)
        {
            var folder = store.JobFolder(start.PipelineId, trial.Id);
            var checkpoints = await StoredCheckpoints.ListAsync(store, folder.Append(CheckpointNames.Folder), CancellationToken.None);
            if (trial.Id == best.Id)
                Assert.NotEmpty(checkpoints);
            else
                Assert.Empty(checkpoints);
            Assert.True(await store.GetInfoAsync(folder.Append(CheckpointNames.MetricsFile), CancellationToken.None) is not null, $"{trial.Step} kept no metrics");
        }
        // Status shows each trial with its values and score, and which one won.
        var view = (await ActivatorUtilities.CreateInstance<Orchestrator.Api.PipelineReader>(host.Services).ReadAsync(start.PipelineId, CancellationToken.None))!;
        Assert.Equal(6, view.Trials.Count);
        Assert.Equal(best.Id, Assert.Single(view.Trials, t => t.Best).JobId);
        Assert.All(view.Trials, t => Assert.Contains("train.optim.lr", t.Parameters.Keys));
        Assert.Contains("AutoML trials (knn score", PipelineRendering.Render(view, bars: false));
        await secondTrainer.StopAsync();
        await host.StopAsync();
    }

    private async Task RunAsync(Dictionary<string, string?> settings, string? uploadTo = null)
    {
        var results = new ConcurrentBag<EmbeddingResult>();
        using var host = Build(settings, p =>
        {
            p.Services.AddSingleton(new ResultCollectorSink { Results = results });
            p.AddOrchestrator().AddAvailableWorkers().AddBus(bus => bus.AddConsumer<ResultCollector>());
        });
        await host.StartAsync();
        var store = host.Services.GetRequiredService<IArtifactStore>();

        var trainArchive = DemoDataset.Write(_folder.Combine("images_train.tar.gz"), 32, seed: 1);
        var testArchive = DemoDataset.Write(_folder.Combine("images_test.tar.gz"), TestImages, seed: 2);
        Uri train = DataUris.FromPath(trainArchive), test = DataUris.FromPath(testArchive);
        if (uploadTo is not null)
        {
            train = new Uri(new Uri(uploadTo), "images_train.tar.gz");
            test = new Uri(new Uri(uploadTo), "images_test.tar.gz");
            await store.PutFileAsync(train, trainArchive, CancellationToken.None);
            await store.PutFileAsync(test, testArchive, CancellationToken.None);
        }
        var spec = SpecLoader.CreateDefault().Resolve(Array.Empty<string>(), [.. DemoDataset.SpecOverrides, "train.num_epochs=1"]);
        var start = new StartPipeline
        {
            PipelineId = NewId.NextGuid(), TrainDataUri = train, TestDataUri = test, Spec = spec.ToJson(), RequestedAt = DateTimeOffset.UtcNow,
        };
        await StartPipelineAsync(host, start);

        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId,
            (p, _) => p.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled, TimeSpan.FromMinutes(5));
        Assert.True(pipeline.Status == JobStatus.Done, $"pipeline {pipeline.Status}: {pipeline.FailedStage} {pipeline.ErrorReason}");

        var inference = Completion<InferenceCompleted>(jobs.Job("inference"));
        var engine = Completion<EngineGenerated>(jobs.Job("engine"));
        var exported = Completion<ModelExported>(jobs.Job("export"));
        var staged = Completion<DatasetStaged>(jobs.Job("stage-test"));
        Assert.Equal(TestImages, inference.EmbeddedCount);
        Assert.Equal(0, inference.FailedCount);
        Assert.Equal("onnxruntime", engine.Target);

        var scratch = _folder.Combine("check");
        var fromCsv = await ReadCsvAsync(store, inference.CsvUri);
        var fromBinary = await ReadBinaryAsync(store, inference, scratch);
        await WaitUntilAsync(() => results.Select(r => r.Key).Distinct().Count() >= TestImages);
        var fromQueue = results.GroupBy(r => r.InputPath).ToDictionary(g => g.Key, g => g.First().Embedding);

        Assert.Equal(TestImages, fromCsv.Count);
        Assert.Equal(fromCsv.Keys.Order(), fromBinary.Keys.Order());
        Assert.Equal(fromCsv.Keys.Order(), fromQueue.Keys.Order());
        foreach (var (path, embedding) in fromBinary)
        {
            Assert.Equal(embedding, fromQueue[path]);
            Assert.Equal(embedding, fromCsv[path], (a, b) => Math.Abs(a - b) <= 1e-6f * Math.Max(1f, Math.Abs(a)));
        }

        // The deployed embeddings are the exported model's outputs for the same images.
        var metadataPath = await store.GetLocalPathAsync(exported.MetadataUri, scratch, CancellationToken.None);
        var metadata = ModelMetadata.FromJson(await File.ReadAllTextAsync(metadataPath), metadataPath);
        var onnxPath = await store.GetLocalPathAsync(exported.OnnxModelUri, scratch, CancellationToken.None);
        using var shards = await ShardReader.OpenAsync(store, staged.DatasetUri, scratch, CancellationToken.None);
        var preprocessor = new ImagePreprocessor(metadata.Preprocessing);
        using var runner = new OnnxModelRunner(onnxPath);
        for (var i = 0; i < shards.Count; i++)
        {
            var image = shards.Read(i);
            var input = new float[preprocessor.ImageSize];
            preprocessor.Preprocess(image.Rgb, image.Width, image.Height, input);
            var expected = runner.Run(input, [1, 3, preprocessor.Height, preprocessor.Width])[0].Data;
            var actual = fromBinary[image.RelativePath];
            Assert.True(Cosine(expected, actual) >= 0.9999, $"{image.RelativePath}: cosine {Cosine(expected, actual)}");
        }
        await host.StopAsync();
    }

    private static T Completion<T>(State.JobRecord job) =>
        JsonSerializer.Deserialize<T>(job.Completion ?? throw new InvalidOperationException($"{job.Step} has no completion"))!;

    private static async Task<Dictionary<string, float[]>> ReadCsvAsync(IArtifactStore store, Uri csv)
    {
        await using var stream = await store.OpenReadAsync(csv, CancellationToken.None);
        using var reader = new StreamReader(stream);
        var header = await reader.ReadLineAsync();
        Assert.Equal("input_path,features", header);
        var rows = new Dictionary<string, float[]>();
        while (await reader.ReadLineAsync() is { Length: > 0 } line)
        {
            var comma = line.IndexOf(',');
            var features = line[(comma + 1)..].Trim('"', '[', ']', ' ');
            rows[line[..comma].Trim('"')] = features.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries)
                .Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        }
        return rows;
    }

    private static async Task<Dictionary<string, float[]>> ReadBinaryAsync(IArtifactStore store, InferenceCompleted inference, string scratch)
    {
        var vectors = await File.ReadAllBytesAsync(await store.GetLocalPathAsync(inference.EmbeddingsUri, scratch, CancellationToken.None));
        var index = await File.ReadAllLinesAsync(await store.GetLocalPathAsync(inference.IndexUri, scratch, CancellationToken.None));
        Assert.Equal(index.Length * inference.Dimension * sizeof(float), vectors.Length);
        var rows = new Dictionary<string, float[]>();
        for (var i = 0; i < index.Length; i++)
        {
            var path = JsonDocument.Parse(index[i]).RootElement.GetProperty("input_path").GetString()!;
            var embedding = new float[inference.Dimension];
            Buffer.BlockCopy(vectors, i * inference.Dimension * sizeof(float), embedding, 0, inference.Dimension * sizeof(float));
            rows[path] = embedding;
        }
        return rows;
    }

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50);
        }
        Assert.True(condition(), "results did not all arrive on the results exchange");
    }
}

public sealed class ResultCollectorSink
{
    public ConcurrentBag<EmbeddingResult> Results { get; set; } = [];
}

/// <summary>A consumer of the results exchange, as any user's service would bind one.</summary>
public sealed class ResultCollector(ResultCollectorSink sink) : IConsumer<EmbeddingsBatch>
{
    public Task Consume(ConsumeContext<EmbeddingsBatch> context)
    {
        foreach (var item in context.Message.Items)
        {
            sink.Results.Add(item);
        }
        return Task.CompletedTask;
    }
}
