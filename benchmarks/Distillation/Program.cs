using System.Diagnostics;
using System.Globalization;
using NvDinoPipeline.Benchmarks.Distillation;
using NvDinoPipeline.Benchmarks.Training;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Distillation;
using NvDinoPipeline.Export;
using NvDinoPipeline.Model;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

// NVDINOv2 distillation on Fashion-MNIST: a teacher is trained by SSL with the training worker's trainer and loop,
// its training checkpoint is handed to the distillation worker's trainer as the worker does it, and a smaller student
// is distilled on the same images. Prints both k-NN accuracies (k=20, cosine), parameter counts and inference images/s
// (TorchSharp eval and ONNX Runtime on the exported graphs, teacher and student timed in turns).
//   dotnet run -c Release --project benchmarks/Distillation [-- --via-workers] [--train-images 30000] [--epochs 4] [--distill-epochs 4]
//       [--student-embed 64] [--student-depth 4] [--student-heads 2] [--cls-weight 1] [--patch-weight 0] [--teacher <checkpoint>]
var cli = new BenchmarkArgs(args);
string? Arg(string name) => cli.Get(name);
int Int(string name, int fallback) => cli.Int(name, fallback);
double Double(string name, double fallback) => cli.Double(name, fallback);
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var threads = Int("--threads", Environment.ProcessorCount);
torch.set_num_threads(threads);
Console.WriteLine($"Distillation benchmark: {Environment.ProcessorCount} cores, torch threads {threads}, CUDA {torch.cuda.is_available()}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");

var side = Int("--img", 56);
var localSide = Int("--local-img", 28);
var trainImages = Int("--train-images", 30000);
var bankImages = Int("--bank", 60000);
var testImages = Int("--test", 10000);
var teacherEpochs = Int("--epochs", 4);
var distillEpochs = Int("--distill-epochs", teacherEpochs);
// The training benchmark's network (benchmarks/Training, `knn`): LayerScale off, no drop path.
var teacherBackbone = new BackboneConfig { EmbedDim = 128, Depth = 4, NumHeads = 4, PatchSize = 14, ImgSize = side, LayerScaleInit = null };
var studentBackbone = teacherBackbone with
{
    EmbedDim = Int("--student-embed", 64), Depth = Int("--student-depth", 4), NumHeads = Int("--student-heads", 2),
};
var recipe = new SslTrainerOptions
{
    Backbone = teacherBackbone,
    Head = new SslHeadOptions { NumLayers = 3, HiddenDim = 512, BottleneckDim = 128, NumPrototypes = 256 },
    Optim = new SslOptimOptions { BaseLr = 0.008, WarmupEpochs = 1, MinLr = 1e-6, LayerwiseDecay = 1.0, FreezeLastLayerEpochs = 0 },
    Teacher = new SslTeacherOptions { MomentumTeacher = 0.98, WarmupTeacherTemp = 0.04, TeacherTemp = 0.05, WarmupTeacherTempEpochs = 1 },
    Epochs = teacherEpochs,
    BatchSize = 64,
    Seed = 1,
};
var data = new SslDataOptions
{
    BatchSize = recipe.BatchSize,
    PatchSize = 14,
    Crops = new MultiCropOptions
    {
        GlobalCropsSize = side, LocalCropsSize = localSide, LocalCropsNumber = 4,
        GlobalCropsScale = (0.35, 1.0), LocalCropsScale = (0.1, 0.35), BlurKernelSize = 5,
    },
    Workers = 2,
    PrefetchBatches = 4,
};

var clock = Stopwatch.StartNew();
var train = FashionMnist.Load("train");
var test = FashionMnist.Load("t10k", testImages);
var bank = train.Images.Take(bankImages).ToList();
var bankLabels = train.Labels[..bank.Count];
var trainSet = train.Images.Take(trainImages).ToList();
var source = new InMemoryImageSource(trainSet);
Console.WriteLine($"Fashion-MNIST: {source.Count} training images for SSL and distillation (labels unused), k-NN bank {bank.Count}, test {test.Images.Count}");
Console.WriteLine((cli.Has("--via-workers") ? "teacher vit_nano 128/4/4, student vit_pico 64/2/2" :
                      $"teacher ViT {teacherBackbone.EmbedDim}/{teacherBackbone.Depth}/{teacherBackbone.NumHeads}, student ViT {studentBackbone.EmbedDim}/{studentBackbone.Depth}/{studentBackbone.NumHeads}") +
                  $", patch 14, {side}px global x2 + {localSide}px local x{data.Crops.LocalCropsNumber}, batch {recipe.BatchSize}, {recipe.Head.NumPrototypes} prototypes");

var folder = Path.Combine(Path.GetTempPath(), $"nvdino-distill-bench-{Environment.ProcessId}");
Directory.CreateDirectory(folder);
var viaWorkers = cli.Has("--via-workers");
var disposables = new List<IDisposable>();
try
{
    VisionTransformer teacherNet, studentNet, emaNet;
    double teacherMinutes, distillMinutes;
    string teacherName, studentName;
    if (viaWorkers)
    {
        // The workers' path: staging, training and distillation runners with the pipeline's spec (named sizes only).
        var spec = SpecLoader.CreateDefault().Resolve([], WorkerPath.SpecOverrides(side, localSide, teacherEpochs, Double("--cls-weight", 1.0)));
        Console.WriteLine("via the workers: staging, training (vit_nano teacher) and distillation (vit_pico student) runners, specs as the pipeline sends them");
        var outcome = await WorkerPath.RunAsync(trainSet, spec, folder);
        disposables.Add(outcome);
        (teacherNet, studentNet, emaNet, teacherMinutes, distillMinutes) = (outcome.Teacher, outcome.Student, outcome.StudentEma, outcome.TeacherMinutes, outcome.DistillMinutes);
        (teacherName, studentName) = ("vit_nano", "vit_pico");
    }
    else
    {
        (teacherNet, studentNet, emaNet, teacherMinutes, distillMinutes) = await TrainersAsync();
        (teacherName, studentName) = ("ViT", "ViT");
    }

    // 3. k-NN (k=20, cosine, weighted T=0.07) of the CLS embedding, as in the training benchmark.
    using var pixelsTrain = Knn.Pixels(bank);
    using var pixelsTest = Knn.Pixels(test.Images);
    var pixelAccuracy = Knn.Accuracy(pixelsTrain, bankLabels, pixelsTest, test.Labels);
    var teacherAccuracy = Evaluate(teacherNet);
    var studentAccuracy = Evaluate(studentNet);
    var emaAccuracy = Evaluate(emaNet);
    var (teacherConfig, studentConfig) = (teacherNet.Config, studentNet.Config);

    // 4. Inference speed: TorchSharp eval forward and ONNX Runtime on the exported graphs, same batch of test images.
    var batch = Int("--infer-batch", 64);
    var rounds = Int("--infer-rounds", 7);
    var input = Preprocess(test.Images.Take(batch).ToList());
    var teacherOnnx = Export(teacherNet, "teacher");
    var studentOnnx = Export(emaNet, "student");
    var (teacherTorch, studentTorch) = InTurns(rounds, () => TorchImagesPerSecond(teacherNet, input), () => TorchImagesPerSecond(emaNet, input));
    double teacherOrt, studentOrt;
    using (var teacherRunner = new OnnxModelRunner(teacherOnnx))
    using (var studentRunner = new OnnxModelRunner(studentOnnx))
    {
        var flat = input.data<float>().ToArray();
        long[] shape = [batch, 3, side, side];
        teacherRunner.Run(flat, shape);
        studentRunner.Run(flat, shape);
        (teacherOrt, studentOrt) = InTurns(rounds, () => OrtImagesPerSecond(teacherRunner, flat, shape), () => OrtImagesPerSecond(studentRunner, flat, shape));
    }
    input.Dispose();

    var teacherParams = teacherNet.ParameterCount;
    var studentParams = studentNet.ParameterCount;
    Console.WriteLine();
    Console.WriteLine($"| model | backbone parameters | k-NN accuracy (k=20, cosine) | TorchSharp images/s (batch {batch}) | ONNX Runtime images/s (batch {batch}) |");
    Console.WriteLine("|---|---|---|---|---|");
    Console.WriteLine($"| raw pixels (784) | - | {pixelAccuracy:P2} | - | - |");
    Console.WriteLine($"| teacher {teacherName} {teacherConfig.EmbedDim}/{teacherConfig.Depth}/{teacherConfig.NumHeads} (SSL, {teacherEpochs} epochs) | {teacherParams:N0} | {teacherAccuracy:P2} | {teacherTorch:F0} | {teacherOrt:F0} |");
    Console.WriteLine($"| student {studentName} {studentConfig.EmbedDim}/{studentConfig.Depth}/{studentConfig.NumHeads} (distilled, {distillEpochs} epochs) | {studentParams:N0} | {studentAccuracy:P2} | {studentTorch:F0} | {studentOrt:F0} |");
    Console.WriteLine($"| student EMA (the deployed backbone) | {studentParams:N0} | {emaAccuracy:P2} | same | same |");
    Console.WriteLine();
    var bestStudent = Math.Max(studentAccuracy, emaAccuracy);
    Console.WriteLine($"student EMA vs teacher: {100 * (emaAccuracy - teacherAccuracy):+0.00;-0.00} points (target: within 2); " +
                      $"speed-up {studentTorch / teacherTorch:F2}x TorchSharp, {studentOrt / teacherOrt:F2}x ONNX Runtime (target: at least 2x); " +
                      $"parameters {(double)teacherParams / studentParams:F2}x fewer");
    Console.WriteLine($"best student vs teacher: {100 * (bestStudent - teacherAccuracy):+0.00;-0.00} points");
    Console.WriteLine($"teacher training {teacherMinutes:F1} min, distillation {distillMinutes:F1} min, peak RSS {Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024):F2} GiB");
}
finally
{
    disposables.ForEach(d => d.Dispose());
    Directory.Delete(folder, recursive: true);
}

// 1 and 2 on the trainers: SslTrainer + TrainingLoop for the teacher (as the training worker runs them), then
// DistillationTrainer + TrainingLoop with the teacher loaded frozen from the training checkpoint file.
async Task<(VisionTransformer Teacher, VisionTransformer Student, VisionTransformer StudentEma, double TeacherMinutes, double DistillMinutes)> TrainersAsync()
{
    var clock = Stopwatch.StartNew();
    var teacherCheckpoint = Arg("--teacher");
    double teacherMinutes = double.NaN;
    if (teacherCheckpoint is null)
    {
        var loader = new SslBatchLoader(source, data, recipe.Seed);
        using var trainer = new SslTrainer(recipe, loader.IterationsPerEpoch);
        Console.WriteLine($"training the teacher: {recipe.Epochs} epochs of {loader.IterationsPerEpoch} steps");
        var result = await new TrainingLoop(trainer, loader, new TrainingLoopOptions { CheckpointDirectory = Path.Combine(folder, "teacher"), CheckpointInterval = recipe.Epochs })
            .RunAsync(new ConsoleObserver("teacher", trainer.TotalSteps, Int("--print-every", 100)), CancellationToken.None);
        teacherMinutes = clock.Elapsed.TotalMinutes;
        teacherCheckpoint = result.Checkpoint.CheckpointPath;
        Console.WriteLine($"teacher trained in {teacherMinutes:F1} min; checkpoint {teacherCheckpoint} ({new FileInfo(teacherCheckpoint).Length / 1e6:F1} MB)");
    }

    var distillOptions = new DistillationTrainerOptions
    {
        Trainer = recipe with { Epochs = distillEpochs },
        Student = studentBackbone,
        DisableMasking = cli.Has("--disable-masking"),
        ClsFeatureWeight = Double("--cls-weight", 1.0),
        PatchFeatureWeight = Double("--patch-weight", 0.0),
    };
    var distillLoader = new SslBatchLoader(source, data, recipe.Seed + 1);
    var distiller = new DistillationTrainer(distillOptions, distillLoader.IterationsPerEpoch);
    disposables.Add(distiller);
    var teacher = distiller.LoadTeacher(teacherCheckpoint, "teacher");
    Console.WriteLine($"distilling: {distillEpochs} epochs of {distillLoader.IterationsPerEpoch} steps, teacher heads from checkpoint {teacher.HeadsFromCheckpoint}, " +
                      $"masking {!distillOptions.DisableMasking}, feature matching cls {distillOptions.ClsFeatureWeight} patch {distillOptions.PatchFeatureWeight}");
    clock.Restart();
    await new TrainingLoop(distiller, distillLoader, new TrainingLoopOptions { CheckpointDirectory = Path.Combine(folder, "student"), CheckpointInterval = distillEpochs })
        .RunAsync(new ConsoleObserver("student", distiller.TotalSteps, Int("--print-every", 100)), CancellationToken.None);
    var distillMinutes = clock.Elapsed.TotalMinutes;
    Console.WriteLine($"student distilled in {distillMinutes:F1} min");
    return (distiller.Teacher.Backbone, distiller.Student.Backbone, distiller.StudentEma.Backbone, teacherMinutes, distillMinutes);
}

double Evaluate(VisionTransformer network)
{
    using var trainFeatures = Knn.Embed(network, bank, side);
    using var testFeatures = Knn.Embed(network, test.Images, side);
    return Knn.Accuracy(trainFeatures, bankLabels, testFeatures, test.Labels);
}

// The k-NN's preprocessing: grey levels to RGB, bicubic to the training side, ImageNet normalisation.
Tensor Preprocess(IReadOnlyList<DecodedImage> images)
{
    using var scope = torch.NewDisposeScope();
    var pixels = new byte[images.Count * 784];
    for (var i = 0; i < images.Count; i++)
        images[i].Pixels.CopyTo(pixels, i * 784);
    var raw = torch.empty([images.Count, 1, 28, 28], ScalarType.Byte);
    raw.bytes = pixels;
    var x = raw.to(ScalarType.Float32).div(255.0).expand(-1, 3, -1, -1);
    x = nn.functional.interpolate(x, [side, side], mode: InterpolationMode.Bicubic, align_corners: false).clamp(0, 1);
    var mean = torch.tensor(ImageOps.ImageNetMean.ToArray()).view(1, 3, 1, 1);
    var std = torch.tensor(ImageOps.ImageNetStd.ToArray()).view(1, 3, 1, 1);
    return ((x - mean) / std).contiguous().MoveToOuterDisposeScope();
}

string Export(VisionTransformer network, string name)
{
    var model = VitOnnxBuilder.Build(BackboneOnnxExport.GraphConfig(network.Config), BackboneOnnxExport.Weights(network), new VitExportOptions { DynamicHeightWidth = false });
    var path = Path.Combine(folder, $"{name}.onnx");
    OnnxModelWriter.Save(model, path);
    return path;
}

// Best of a few timed passes over the batch; teacher and student alternate so that outside load falls on both alike.
(double First, double Second) InTurns(int count, Func<double> first, Func<double> second)
{
    first();
    second();
    double a = 0, b = 0;
    for (var i = 0; i < count; i++)
    {
        a = Math.Max(a, first());
        b = Math.Max(b, second());
    }
    return (a, b);
}

double TorchImagesPerSecond(VisionTransformer network, Tensor input)
{
    network.eval();
    using var noGrad = torch.no_grad();
    var watch = Stopwatch.StartNew();
    const int passes = 3;
    for (var i = 0; i < passes; i++)
        network.forward(input).Dispose();
    return passes * input.shape[0] / watch.Elapsed.TotalSeconds;
}

double OrtImagesPerSecond(OnnxModelRunner runner, float[] input, long[] shape)
{
    var watch = Stopwatch.StartNew();
    const int passes = 3;
    for (var i = 0; i < passes; i++)
        runner.Run(input, shape);
    return passes * shape[0] / watch.Elapsed.TotalSeconds;
}
