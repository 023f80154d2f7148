using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Model;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// A small NVDINOv2 backbone trained here by self-supervision on Fashion-MNIST (labels unused) with the project's
/// trainer, for a bounded time, then exported to ONNX the way the export stage does: the teacher's weights
/// through <see cref="VitOnnxBuilder"/>. The recipe is the training benchmark's k-NN network (benchmarks/Training).
/// </summary>
internal static class TrainedBackbone
{
    public const int Side = 56;

    public static async Task<(ModelProto Model, VitGraphConfig Config, string Note)> TrainAsync(FashionMnist train, int images, int epochs, double minutes, int threads)
    {
        torch.set_num_threads(threads);
        var backbone = new BackboneConfig { EmbedDim = 128, Depth = 4, NumHeads = 4, PatchSize = 14, ImgSize = Side, DropPathRate = 0, LayerScaleInit = null };
        var options = new SslTrainerOptions
        {
            Backbone = backbone,
            Head = new SslHeadOptions { NumLayers = 3, HiddenDim = 512, BottleneckDim = 128, NumPrototypes = 1024 },
            Optim = new SslOptimOptions { BaseLr = 0.004, WarmupEpochs = 1, MinLr = 1e-6, LayerwiseDecay = 1.0, FreezeLastLayerEpochs = 1 },
            Teacher = new SslTeacherOptions { MomentumTeacher = 0.99, WarmupTeacherTemp = 0.04, TeacherTemp = 0.07, WarmupTeacherTempEpochs = 1 },
            Epochs = epochs,
            BatchSize = 64,
            Seed = 1,
        };
        var data = new SslDataOptions
        {
            BatchSize = options.BatchSize,
            PatchSize = 14,
            Crops = new MultiCropOptions
            {
                GlobalCropsSize = Side, LocalCropsSize = 28, LocalCropsNumber = 4, GlobalCropsScale = (0.35, 1.0), LocalCropsScale = (0.1, 0.35), BlurKernelSize = 5,
            },
            Workers = 1,
            PrefetchBatches = 2,
        };
        var source = new InMemoryImageSource([.. Enumerable.Range(0, images).Select(i => new DecodedImage(train.Grey(i).ToArray(), FashionMnist.Side, FashionMnist.Side, 1))]);
        var loader = new SslBatchLoader(source, data, options.Seed);
        using var trainer = new SslTrainer(options, loader.IterationsPerEpoch);
        var folder = Path.Combine(Path.GetTempPath(), $"nvdino-engine-bench-train-{Environment.ProcessId}");
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(minutes));
        var observer = new StepCounter();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            await new TrainingLoop(trainer, loader, new TrainingLoopOptions { CheckpointDirectory = folder, CheckpointInterval = epochs }).RunAsync(observer, limit.Token);
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested)
        {
            // The time bound: the teacher as it stands is exported.
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }

        var teacher = trainer.Teacher.Backbone;
        teacher.eval();
        var weights = new Dictionary<string, NamedWeight>(StringComparer.Ordinal);
        foreach (var (name, parameter) in teacher.named_parameters())
        {
            using var scope = NewDisposeScope();
            var values = parameter.detach().to(ScalarType.Float32, CPU).contiguous();
            weights[name] = new NamedWeight(values.data<float>().ToArray(), [.. parameter.shape]);
        }

        var config = new VitGraphConfig
        {
            EmbedDim = backbone.EmbedDim, Depth = backbone.Depth, NumHeads = backbone.NumHeads, PatchSize = backbone.PatchSize, ImageSize = backbone.ImgSize,
            LayerNormEpsilon = VisionTransformer.LayerNormEpsilon, InterpolateOffset = backbone.InterpolateOffset,
        };
        var note = $"ViT 128/4/4 patch 14 at {Side}px, SSL on {images} Fashion-MNIST training images for {observer.Steps} steps ({clock.Elapsed.TotalMinutes:F1} min" +
            $"{(limit.IsCancellationRequested ? ", stopped by the time bound" : $", {epochs} epochs")})";
        return (VitOnnxBuilder.Build(config, weights, new VitExportOptions()), config, note);
    }

    private sealed class StepCounter : ITrainingObserver
    {
        public long Steps { get; private set; }

        public void OnStep(TrainingStepResult step, double imagesPerSecond) => Steps++;

        public Task OnEpochEndAsync(EpochSummary summary, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task OnCheckpointAsync(SavedCheckpoint checkpoint, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
