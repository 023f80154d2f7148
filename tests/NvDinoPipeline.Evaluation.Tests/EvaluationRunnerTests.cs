using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Evaluation;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Inference;
using NvDinoPipeline.Inference.Tests.Support;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Evaluation.Tests;

public sealed class EvaluationRunnerTests : IDisposable
{
    private static readonly (string Name, byte R, byte G, byte B)[] Colours = [("red", 220, 30, 30), ("green", 30, 200, 40), ("blue", 40, 40, 220)];

    private readonly TempDirectory folder = new("nvdino-evaluation");
    private readonly ServiceProvider provider;
    private readonly TinyVit model;

    public EvaluationRunnerTests()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ArtifactStore:Root"] = new Uri(folder.Combine("artifacts") + "/").AbsoluteUri,
            ["ArtifactStore:AllowedReadRoots:0"] = folder.Path,
        }).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddArtifactStore(configuration);
        services.AddSingleton(Options.Create(new InferenceOptions()));
        services.AddSingleton<IInferenceHardware, NativeInferenceHardware>();
        services.AddSingleton<DeployedModelLoader>();
        services.AddScoped<EvaluationRunner>();
        provider = services.BuildServiceProvider(validateScopes: true);
        model = TinyVit.Create(folder.Combine("model"), patchSize: 16);
    }

    public void Dispose()
    {
        provider.Dispose();
        folder.Dispose();
    }

    private IArtifactStore Store => provider.GetRequiredService<IArtifactStore>();

    [Fact]
    public async Task Class_folders_are_scored_against_the_labelled_training_images_with_every_baseline()
    {
        var train = await ShardsAsync("train", Labelled(30, seed: 1, prefix: "images_train"));
        var test = await ShardsAsync("test", Labelled(12, seed: 2, prefix: "images_test"));

        var result = await RunAsync(Command(train, test));

        var completed = result.Completed;
        Assert.True(completed.Evaluated);
        var report = Read(completed.EvaluationUri);
        Assert.Equal("train", report.GallerySource);
        Assert.Equal(["blue", "green", "red"], report.Classes);
        Assert.Equal(12, report.Test!.Scored);
        Assert.Equal(30, report.Gallery!.Scored);
        Assert.True(report.Results!.ContainsKey("random_init"), report.RandomInit);
        Assert.Equal(["deployed", "random_init", "raw_pixels", "raw_pixels_centred"], report.Results.Keys.Order());
        // Plain colours are told apart by their pixels alone.
        Assert.Equal(1.0, report.Results["raw_pixels"].KnnTop1);
        Assert.Equal(TinyVit.Dimension, report.Results["deployed"].Dimension);
        Assert.All(report.Results.Values, s => Assert.InRange(s.KnnTop1, 0, 1));
        Assert.All(report.Results.Values, s => Assert.NotNull(s.LinearProbeTop1));
        Assert.Equal(completed.KnnTop1, report.Results["deployed"].KnnTop1);
        Assert.Equal(Math.Round(report.Results["deployed"].KnnTop1, 4), result.Metrics["knn_top1"]);
        Assert.Equal(1.0, result.Metrics["raw_pixels_knn_top1"]);
        Assert.Equal(1.0, result.Metrics["raw_pixels_centred_knn_top1"]);
        Assert.True(result.Metrics.ContainsKey("random_init_linear_probe_top1"));
        Assert.Equal(1, result.Metrics["evaluated"]);
        // Where the time went: embedding, then each set's k-NN and probe, all within the job's seconds.
        Assert.InRange(report.EmbeddingSeconds!.Value, 0, report.Seconds!.Value);
        Assert.Equal(report.EmbeddingSeconds, result.Metrics["embedding_seconds"]);
        Assert.InRange(report.EmbeddingSeconds.Value + report.Results.Values.Sum(s => s.KnnSeconds!.Value + s.LinearProbeSeconds!.Value), 0, report.Seconds.Value);
        // The deployed model's random weights and the pixels spread the images out; DINOv2's initialisation (LayerScale
        // 1e-5) maps every image to nearly the same CLS token, and the spread says so.
        Assert.All(["deployed", "raw_pixels"], name => Assert.True(report.Results[name].NormalisedStdMedian > 0.01, $"{name}: {report.Results[name]}"));
        Assert.True(report.Results["random_init"].NormalisedStdMedian < 1e-3, report.Results["random_init"].ToString());
        Assert.Equal(report.Results["deployed"].NormalisedStdMin, result.Metrics["embedding_std_min"]);
    }

    [Fact]
    public async Task A_backbone_the_product_cannot_build_is_scored_without_the_random_baseline_saying_why()
    {
        var unbuildable = TinyVit.Create(folder.Combine("odd-grid"), patchSize: 8);
        // Metadata whose trained image size the patch does not divide describes no backbone the product can build.
        File.WriteAllText(unbuildable.MetadataPath, (unbuildable.Metadata with
        {
            Backbone = unbuildable.Metadata.Backbone with { TrainedImageSize = 30 },
        }).ToJson());
        var train = await ShardsAsync("train", Labelled(10, seed: 1, prefix: "train"));
        var test = await ShardsAsync("test", Labelled(6, seed: 2, prefix: "test"));

        var result = await RunAsync(Command(train, test) with { DeployArtifactUri = unbuildable.ModelUri, ModelMetadataUri = unbuildable.MetadataUri });

        var report = Read(result.Completed.EvaluationUri);
        Assert.Equal(["deployed", "raw_pixels", "raw_pixels_centred"], report.Results!.Keys.Order());
        Assert.Contains("cannot be built at random initialisation: ImgSize must be a positive multiple of the patch size 8, got 30", report.RandomInit);
    }

    [Fact]
    public async Task Without_labelled_training_images_the_test_images_are_scored_leave_one_out()
    {
        var train = await ShardsAsync("train", TestImages.Make(10, seed: 3, prefix: "unlabelled").Select(i => i with { Path = Path.GetFileName(i.Path) }));
        var test = await ShardsAsync("test", Labelled(24, seed: 4, prefix: "test"));

        var result = await RunAsync(Command(train, test));

        var report = Read(result.Completed.EvaluationUri);
        Assert.Equal("test (leave-one-out)", report.GallerySource);
        Assert.Null(report.Gallery);
        Assert.Equal(1.0, report.Results!["raw_pixels"].KnnTop1);
        Assert.Contains("even-numbered test images", report.LinearProbeProtocol);
    }

    [Fact]
    public async Task Test_images_without_labels_complete_unscored_saying_why()
    {
        var train = await ShardsAsync("train", Labelled(9, seed: 1, prefix: "train"));
        var test = await ShardsAsync("test", TestImages.Make(5, seed: 5).Select(i => i with { Path = Path.GetFileName(i.Path) }));

        var result = await RunAsync(Command(train, test));

        Assert.False(result.Completed.Evaluated);
        Assert.Contains("carry no labels", result.Completed.Reason);
        Assert.Null(result.Completed.KnnTop1);
        var report = Read(result.Completed.EvaluationUri);
        Assert.False(report.Evaluated);
        Assert.Equal(result.Completed.Reason, report.Reason);
        Assert.Equal(0, result.Metrics["evaluated"]);
    }

    [Fact]
    public async Task A_labels_csv_labels_images_at_the_root()
    {
        var images = Labelled(12, seed: 6, prefix: "x").Select(i => i with { Path = i.Path.Replace('/', '_') }).ToList();
        var test = await ShardsAsync("test", images);
        var train = await ShardsAsync("train", TestImages.Make(4, seed: 3).Select(i => i with { Path = Path.GetFileName(i.Path) }));
        var csv = folder.Combine("labels.csv");
        File.WriteAllLines(csv, ["input_path,label", .. images.Select(i => $"{i.Path},{i.Path.Split('_')[^2]}")]);

        var result = await RunAsync(Command(train, test, $"evaluate.test_labels={csv}"));

        var report = Read(result.Completed.EvaluationUri);
        Assert.True(report.Evaluated);
        Assert.Equal(csv, report.Test!.LabelsFrom);
        Assert.Equal(["blue", "green", "red"], report.Classes);
    }

    [Fact]
    public async Task A_labels_csv_naming_none_of_the_test_images_fails_naming_the_key_and_a_staged_path()
    {
        var test = await ShardsAsync("test", Labelled(6, seed: 7, prefix: "t"));
        var train = await ShardsAsync("train", Labelled(6, seed: 8, prefix: "u"));
        var csv = folder.Combine("other.csv");
        File.WriteAllLines(csv, ["input_path,label", "elsewhere/1.png,red"]);

        var error = await Assert.ThrowsAsync<StageInputException>(() => RunAsync(Command(train, test, $"evaluate.test_labels={csv}")));

        Assert.StartsWith("evaluate.test_labels: ", error.Message);
        Assert.Contains("names none of the 6 test images", error.Message);
    }

    [Fact]
    public async Task A_train_gallery_asked_for_without_labelled_training_images_fails_saying_why()
    {
        var test = await ShardsAsync("test", Labelled(6, seed: 7, prefix: "t"));
        var train = await ShardsAsync("train", TestImages.Make(4, seed: 3).Select(i => i with { Path = Path.GetFileName(i.Path) }));

        var error = await Assert.ThrowsAsync<StageInputException>(() => RunAsync(Command(train, test, "evaluate.gallery=train")));

        Assert.Contains("evaluate.gallery is train, but the 4 training images carry labels of 0 classes", error.Message);
    }

    /// <summary>Images of a plain class colour with a little noise, at <c>{prefix}/{colour}/{i}.png</c>.</summary>
    private static List<TestImage> Labelled(int count, int seed, string prefix)
    {
        var random = new Random(seed);
        var images = new List<TestImage>();
        for (var i = 0; i < count; i++)
        {
            var (name, r, g, b) = Colours[i % Colours.Length];
            const int side = 24;
            var rgb = new byte[side * side * 3];
            for (var p = 0; p < side * side; p++)
            {
                rgb[p * 3] = (byte)Math.Clamp(r + random.Next(-20, 21), 0, 255);
                rgb[p * 3 + 1] = (byte)Math.Clamp(g + random.Next(-20, 21), 0, 255);
                rgb[p * 3 + 2] = (byte)Math.Clamp(b + random.Next(-20, 21), 0, 255);
            }
            images.Add(new TestImage($"{prefix}/{name}/{i:D3}.png", rgb, side, side, ImageFiles.EncodePng(rgb, side, side)));
        }
        return images;
    }

    private async Task<Uri> ShardsAsync(string name, IEnumerable<TestImage> images) =>
        new(await TestImages.WriteShardsAsync(folder.Combine(name, "shards"), images));

    private EvaluateModel Command(Uri train, Uri test, params string[] overrides)
    {
        var pipelineId = NewId.NextGuid();
        var jobId = NewId.NextGuid();
        return new EvaluateModel
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = SpecLoader.CreateDefault().Resolve([], overrides).ToJson(),
            OutputUri = Store.JobFolder(pipelineId, jobId),
            DeployArtifactUri = model.ModelUri,
            Target = DeployedModelReference.OnnxRuntimeTarget,
            ModelMetadataUri = model.MetadataUri,
            TestDatasetUri = test,
            TrainDatasetUri = train,
        };
    }

    private async Task<StageResult<ModelEvaluated>> RunAsync(EvaluateModel command)
    {
        await using var scope = provider.CreateAsyncScope();
        var runner = scope.ServiceProvider.GetRequiredService<EvaluationRunner>();
        var scratch = folder.Combine("scratch", command.JobId.ToString());
        Directory.CreateDirectory(scratch);
        var context = new StageContext(command, PipelineStage.Evaluation, ResolvedSpec.FromJson(command.Spec), command.OutputUri, scratch,
            NullLogger.Instance, (_, _, _) => Task.CompletedTask);
        return await runner.RunAsync(command, context, CancellationToken.None);
    }

    private static EvaluationReport Read(Uri uri) =>
        JsonSerializer.Deserialize<EvaluationReport>(File.ReadAllText(uri.LocalPath), EvaluationReport.Json)!;
}
