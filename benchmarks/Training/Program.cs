using System.Diagnostics;
using System.Globalization;
using NvDinoPipeline.Benchmarks.Harness;
using NvDinoPipeline.Benchmarks.Training;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

// NVDINOv2 self-supervised training benchmarks.
//   dotnet run -c Release --project benchmarks/Training -- knn [--epochs 4] [--train-images 30000] [--batch 64] [--prototypes 256] [--student] ...
//   dotnet run -c Release --project benchmarks/Training -- pipeline [--split validation|test] [--spec specs/examples/small-images.yaml] [--set key=value ...] [--images N (a quick check)]
//       (Fashion-MNIST through the product's own pipeline on the embedded default; figures from its evaluation stage)
//   dotnet run -c Release --project benchmarks/Training -- throughput [--configs knn_net,vit_s14_224] [--precision fp32,bf16] [--steps 5] [--peer] [--long-minutes 5]
//       (each precision's step and the same-run reference GEMM of benchmarks/Harness take turns; medians, ratios, verdicts;
//        --peer adds the same step in Debian's PyTorch, benchmarks/Peers/ssl_step.py, installed by scripts/benchmark-peers.sh)
//   dotnet run -c Release --project benchmarks/Training -- replicas [--config knn_net] [--replicas 1,2,4] [--batch 16] [--steps 4]
//   dotnet run -c Release --project benchmarks/Training -- soak [--minutes 30] [--gc-pressure] [--embed-images 2000] [the knn options]
//   dotnet run -c Release --project benchmarks/Training -- scalars [--seconds 60]
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var mode = args.FirstOrDefault() ?? "";
var cli = new BenchmarkArgs(args);
var threads = Int("--threads", Environment.ProcessorCount);
torch.set_num_threads(threads);
Console.WriteLine($"{Environment.ProcessorCount} cores, torch threads {threads}, CUDA {torch.cuda.is_available()}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
switch (mode)
{
    case "knn":
        await KnnAsync();
        break;
    case "throughput":
        await ThroughputAsync();
        break;
    case "replicas":
        Replicas();
        break;
    case "soak":
        RunSoak();
        break;
    case "pipeline":
        return await PipelineRun.RunAsync(Arg("--split") ?? "validation", Arg("--spec") ?? "specs/examples/small-images.yaml", cli.All("--set"),
            Arg("--work") ?? Path.Combine(Path.GetTempPath(), "nvdino-fashion-mnist"), Arg("--images") is { } images ? int.Parse(images, CultureInfo.InvariantCulture) : null);
    case "scalars":
        Console.WriteLine("| call | seconds | calls | forced collections | failed | wrong value |");
        Console.WriteLine("|---|---|---|---|---|---|");
        ScalarRace.Run(TimeSpan.FromSeconds(Double("--seconds", 60)));
        break;
    default:
        Console.Error.WriteLine("usage: knn | pipeline | throughput | replicas | soak | scalars (see the comments at the top of Program.cs for options)");
        return 2;
}
return 0;

async Task KnnAsync()
{
    var (options, data) = KnnConfig();
    var side = options.Backbone.ImgSize;
    var backbone = options.Backbone;
    var trainImages = Int("--train-images", 30000);
    var bankImages = Int("--bank", 60000);
    var testImages = Int("--test", 10000);
    var localSide = data.Crops.LocalCropsSize;
    var clock = Stopwatch.StartNew();
    var train = FashionMnist.Load("train");
    // --validation: the last 10 000 training images are the queries and never trained on; the test set stays unread.
    var validation = cli.Has("--validation");
    var kept = validation ? FashionMnist.ValidationStart : train.Images.Count;
    var test = validation
        ? new FashionMnist(train.Images.Skip(kept).Take(testImages).ToList(), train.Labels[kept..][..Math.Min(testImages, train.Images.Count - kept)])
        : FashionMnist.Load("t10k", testImages);
    var bank = train.Images.Take(Math.Min(bankImages, kept)).ToList();
    var bankLabels = train.Labels[..bank.Count];
    var source = new InMemoryImageSource(train.Images.Take(Math.Min(trainImages, kept)).ToList());
    Console.WriteLine($"Fashion-MNIST: SSL on {source.Count} training images (labels unused), k-NN bank {bank.Count} training images, " +
                      $"{test.Images.Count} {(validation ? "validation images (the last of the training set)" : "test images")}; loaded in {clock.Elapsed.TotalSeconds:F1} s");
    Console.WriteLine($"ViT {backbone.EmbedDim}/{backbone.Depth}/{backbone.NumHeads} patch {backbone.PatchSize}, {side}px global x2 + {localSide}px local x{data.Crops.LocalCropsNumber}, batch {options.BatchSize}, " +
                      $"{options.Epochs} epochs, lr {options.ScaledLr:G3}, {options.Head.NumPrototypes} prototypes, {options.Precision}, {data.Workers} loader threads");

    using var pixelsTrain = Knn.Pixels(bank);
    using var pixelsTest = Knn.Pixels(test.Images);
    var pixelAccuracy = Knn.Accuracy(pixelsTrain, bankLabels, pixelsTest, test.Labels);
    using var bankMean = pixelsTrain.mean([0], keepdim: true);
    using var centredTrain = pixelsTrain - bankMean;
    using var centredTest = pixelsTest - bankMean;
    var centredAccuracy = Knn.Accuracy(centredTrain, bankLabels, centredTest, test.Labels);
    Console.WriteLine($"raw pixels minus the bank's mean image k-NN: {centredAccuracy:P2}");
    Console.WriteLine($"raw pixels k-NN: {pixelAccuracy:P2}");

    var loader = new SslBatchLoader(source, data, options.Seed);
    using var trainer = new SslTrainer(options, loader.IterationsPerEpoch);
    Console.WriteLine($"backbone parameters {trainer.Student.Backbone.ParameterCount:N0}, {loader.IterationsPerEpoch} steps per epoch");
    clock.Restart();
    var (randomAccuracy, randomStd) = Evaluate(trainer.Teacher.Backbone);
    Console.WriteLine($"random init k-NN: {randomAccuracy:P2} (embedding {clock.Elapsed.TotalSeconds:F0} s)");

    var directory = Path.Combine(Path.GetTempPath(), $"nvdino-knn-bench-{Environment.ProcessId}");
    var observer = new ConsoleObserver("teacher", trainer.TotalSteps, every: Int("--print-every", 25));
    clock.Restart();
    var result = await new TrainingLoop(trainer, loader, new TrainingLoopOptions { CheckpointDirectory = directory, CheckpointInterval = options.Epochs })
        .RunAsync(observer, CancellationToken.None);
    var trainSeconds = clock.Elapsed.TotalSeconds;
    Directory.Delete(directory, recursive: true);
    Console.WriteLine($"trained {result.StepsTaken} steps ({result.StepsTaken * options.BatchSize} images) in {trainSeconds:F0} s: {result.StepsTaken * options.BatchSize / trainSeconds:F1} images/s");

    var (trainedAccuracy, trainedStd) = Evaluate(trainer.Teacher.Backbone);
    var studentAccuracy = args.Contains("--student") ? Evaluate(trainer.Student.Backbone).Accuracy : double.NaN;
    Console.WriteLine();
    Console.WriteLine("| features (k=20, cosine, weighted T=0.07) | k-NN accuracy | per-dim std of l2-normalised embedding (min / median / mean) |");
    Console.WriteLine("|---|---|---|");
    Console.WriteLine($"| raw pixels (784) | {pixelAccuracy:P2} | - |");
    Console.WriteLine($"| raw pixels minus the mean image (784) | {centredAccuracy:P2} | - |");
    Console.WriteLine($"| random-init ViT, CLS ({backbone.EmbedDim}) | {randomAccuracy:P2} | {randomStd.Min:G3} / {randomStd.Median:G3} / {randomStd.Mean:G3} |");
    Console.WriteLine($"| SSL teacher after {options.Epochs} epochs, CLS ({backbone.EmbedDim}) | {trainedAccuracy:P2} | {trainedStd.Min:G3} / {trainedStd.Median:G3} / {trainedStd.Mean:G3} |");
    if (!double.IsNaN(studentAccuracy))
        Console.WriteLine($"| SSL student, CLS | {studentAccuracy:P2} | |");
    Console.WriteLine($"training wall time {trainSeconds / 60:F1} min, peak RSS {Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024):F2} GiB");

    (double Accuracy, (double Min, double Median, double Mean) Std) Evaluate(VisionTransformer network)
    {
        using var trainFeatures = Knn.Embed(network, bank, side);
        using var testFeatures = Knn.Embed(network, test.Images, side);
        return (Knn.Accuracy(trainFeatures, bankLabels, testFeatures, test.Labels), Knn.PerDimensionStd(testFeatures));
    }
}

void RunSoak()
{
    var (options, data) = KnnConfig();
    var minutes = Double("--minutes", 30);
    var train = FashionMnist.Load("train");
    var test = FashionMnist.Load("t10k", Int("--embed-images", 2000));
    var source = new InMemoryImageSource(train.Images.Take(Int("--train-images", 30000)).ToList());
    var gcPressure = cli.Has("--gc-pressure");
    Console.WriteLine($"soak for {minutes:0.#} min: the k-NN network on {source.Count} Fashion-MNIST images, {options.Epochs} epochs per run, {data.Workers} loader threads, " +
                      $"{test.Images.Count} test images embedded after each run{(gcPressure ? ", a thread forcing garbage collections and finalizers" : "")}");
    new Soak(options, data, source, test.Images, Int("--print-every", 100)).Run(TimeSpan.FromMinutes(minutes), gcPressure);
}

// The k-NN benchmark's network, recipe and loader (every soak and k-NN run trains the same thing).
(SslTrainerOptions Options, SslDataOptions Data) KnnConfig()
{
    var side = Int("--img", 56);
    var localSide = Int("--local-img", 28);
    var backbone = new BackboneConfig
    {
        EmbedDim = Int("--embed", 128), Depth = Int("--depth", 4), NumHeads = Int("--heads", 4),
        PatchSize = Int("--patch", 14), ImgSize = side, DropPathRate = Double("--drop-path", 0.0),
        // LayerScale at 1e-5 (DINOv2's init for deep ViTs) makes a fresh network's CLS token the same for every image;
        // this 4-block network trains without it unless --layerscale is given.
        LayerScaleInit = Arg("--layerscale") is { } layerScale ? double.Parse(layerScale, CultureInfo.InvariantCulture) : null,
    };
    var options = new SslTrainerOptions
    {
        Backbone = backbone,
        Head = new SslHeadOptions { NumLayers = 3, HiddenDim = Int("--head-hidden", 512), BottleneckDim = 128, NumPrototypes = Int("--prototypes", 256) },
        Optim = new SslOptimOptions
        {
            BaseLr = Double("--lr", 0.008), WarmupEpochs = Int("--warmup", 1), MinLr = 1e-6, LayerwiseDecay = Double("--layerwise-decay", 1.0),
            FreezeLastLayerEpochs = Int("--freeze-last-layer", 0),
        },
        Teacher = new SslTeacherOptions
        {
            MomentumTeacher = Double("--momentum", 0.98), WarmupTeacherTemp = 0.04, TeacherTemp = Double("--teacher-temp", 0.05),
            WarmupTeacherTempEpochs = Int("--teacher-temp-warmup", 1),
        },
        Epochs = Int("--epochs", 4),
        BatchSize = Int("--batch", 64),
        Seed = 1,
        Precision = Arg("--precision") == "bf16" ? TrainingPrecision.Bf16 : TrainingPrecision.Fp32,
    };
    var data = new SslDataOptions
    {
        BatchSize = options.BatchSize,
        PatchSize = backbone.PatchSize,
        Crops = new MultiCropOptions
        {
            GlobalCropsSize = side, LocalCropsSize = localSide, LocalCropsNumber = Int("--local-crops", 4),
            GlobalCropsScale = (0.35, 1.0), LocalCropsScale = (0.1, 0.35), BlurKernelSize = 5,
        },
        Workers = Int("--workers", 2),
        PrefetchBatches = 4,
    };

    return (options, data);
}

async Task ThroughputAsync()
{
    var repetitions = Int("--steps", 5);
    var names = (Arg("--configs") ?? "knn_net,vit_s14_224_small_head,vit_s14_224").Split(',');
    var precisions = (Arg("--precision") ?? "fp32").Split(',');
    Console.WriteLine($"Machine: {Machine.Describe()}");
    Console.WriteLine($"Training steps on pre-built batches (loader excluded): per config, each precision's step and the same-run reference GEMM " +
        $"take turns, one warm-up round and {repetitions} timed ones; medians.");
    var rows = new List<string>();
    foreach (var name in names)
    {
        var runs = new List<(string Precision, SslTrainer Trainer, SslBatchLoader Loader, SslDataOptions Data, SslTrainerOptions Options, List<double> Masked)>();
        using var bench = new Interleaved(repetitions);
        foreach (var precision in precisions)
        {
            var (options, data) = Config(name, precision == "bf16" ? TrainingPrecision.Bf16 : TrainingPrecision.Fp32);
            var images = Synthetic(Math.Max(data.BatchSize * (repetitions + 1), 16), 256);
            var loader = new SslBatchLoader(images, data, seed: 3);
            (string Precision, SslTrainer Trainer, SslBatchLoader Loader, SslDataOptions Data, SslTrainerOptions Options, List<double> Masked) run =
                (precision, new SslTrainer(options with { Epochs = 1 }, loader.IterationsPerEpoch), loader, data, options, []);
            runs.Add(run);
            var step = 0;
            bench.Add($"{name} {precision} step", "images/s", () =>
            {
                using var batch = run.Loader.Build(0, step++);
                var clock = Stopwatch.StartNew();
                var result = run.Trainer.Step(batch);
                var seconds = clock.Elapsed.TotalSeconds;
                run.Masked.Add(result[TrainingMetrics.MaskedPatches] / run.Data.BatchSize);
                return run.Data.BatchSize / seconds;
            });
        }
        // --peer: the same step in Debian's PyTorch (benchmarks/Peers/ssl_step.py), one process per precision, in the same rounds.
        var peers = new List<(string Precision, PythonPeer Peer)>();
        if (cli.Has("--peer"))
        {
            foreach (var run in runs)
            {
                var (b, h, c) = (run.Options.Backbone, run.Options.Head, run.Data.Crops);
                if (b.FfnLayer != FfnLayer.Mlp || b.NumRegisterTokens > 0)
                {
                    // Not the same network: no figure rather than a peer that runs something else.
                    Console.WriteLine($"No peer for {name}: ssl_step.py has a GELU MLP and no register tokens, the config has {b.FfnLayer} and {b.NumRegisterTokens} registers.");
                    continue;
                }
                var layerScale = b.LayerScaleInit is null ? " --no-layerscale" : "";
                var arguments = string.Create(CultureInfo.InvariantCulture,
                    $"--dim {b.EmbedDim} --depth {b.Depth} --heads {b.NumHeads} --patch {b.PatchSize} --side {c.GlobalCropsSize} --local-side {c.LocalCropsSize} " +
                    $"--locals {c.LocalCropsNumber} --batch {run.Data.BatchSize} --prototypes {h.NumPrototypes} --head-layers {h.NumLayers} --hidden {h.HiddenDim} " +
                    $"--bottleneck {h.BottleneckDim} --drop-path {b.DropPathRate} --precision {run.Precision} --threads {threads}{layerScale}");
                if (PythonPeer.TryStart("ssl_step.py", arguments) is not { } peer)
                    continue;
                Console.WriteLine($"Peer ({run.Precision}): {peer.Description}");
                peers.Add((run.Precision, peer));
                var batch = run.Data.BatchSize;
                bench.Add($"{name} {run.Precision} pytorch peer step", "images/s", () => peer.ImagesPerSecond(batch));
            }
        }
        var measured = await bench.RunAsync();
        peers.ForEach(p => p.Peer.Dispose());
        measured.PrintMedians();
        foreach (var (precision, _) in peers)
        {
            var (product, peer) = (measured.Median($"{name} {precision} step"), measured.Median($"{name} {precision} pytorch peer step"));
            Console.WriteLine($"{name} {precision}: product {product:F2} images/s, PyTorch peer {peer:F2} images/s, product / peer {product / peer:F2}");
        }
        var peak = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024);
        double? fp32Rate = null;
        foreach (var (precision, trainer, _, data, options, masked) in runs)
        {
            var rate = measured.Median($"{name} {precision} step");
            var flops = Flops.TrainingImage(options, data.Crops.GlobalCropsSize, data.Crops.LocalCropsSize, data.Crops.LocalCropsNumber, masked.Average());
            var achieved = flops * rate / 1e9;
            var ratio = achieved / measured.ReferenceGflops;
            fp32Rate = precision == "fp32" ? rate : fp32Rate;
            var verdict = name.StartsWith("vit_s14_224", StringComparison.Ordinal) && precision == "fp32" ? $"{measured.Verdict(ratio, 0.80)} (target ≥ 0.80)"
                : precision == "bf16" && fp32Rate is { } fp32 ? $"bf16/fp32 {rate / fp32:F2}: {measured.Verdict(rate / fp32, 2.5)} (target ≥ 2.5)" : "";
            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {precision} | {data.BatchSize} | 2x{data.Crops.GlobalCropsSize} + {data.Crops.LocalCropsNumber}x{data.Crops.LocalCropsSize} | " +
                $"{trainer.Student.Backbone.ParameterCount / 1e6:F1}M | {flops / 1e9:F2} | {data.BatchSize / rate:F2} | {rate:F2} | {achieved:F1} | " +
                $"{measured.ReferenceGflops:F1} | {ratio:F2} | {verdict} | {peak:F2} | {measured.LoadBefore} → {measured.LoadAfter} |"));
            trainer.Dispose();
        }
    }
    Console.WriteLine();
    Console.WriteLine("| config | precision | batch | crops | params (backbone) | model GFLOP / image | median s / step | images/s | achieved GFLOP/s | reference GEMM GFLOP/s | ratio | verdict | peak RSS GiB | load |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    rows.ForEach(Console.WriteLine);

    var minutes = Double("--long-minutes", 0);
    if (minutes > 0)
        await LongRunAsync(Arg("--long-config") ?? "knn_net", minutes);
}

// Data-parallel steps: N replicas, each on --batch images, against one device on the whole batch of N·batch. On CUDA
// hosts with N devices the replicas run on GPUs; elsewhere on the CPU device, where they share the same cores and
// the figure only shows what splitting, threads, copies and the gradient averaging cost.
void Replicas()
{
    var steps = Int("--steps", 4);
    var name = Arg("--config") ?? "knn_net";
    var perReplica = Int("--batch", 16);
    var counts = (Arg("--replicas") ?? "1,2,4").Split(',').Select(n => int.Parse(n, CultureInfo.InvariantCulture)).ToList();
    var gpus = torch.cuda.is_available() ? torch.cuda.device_count() : 0;
    Console.WriteLine($"{name}, {perReplica} images per replica, best and median of {steps} timed steps after one warm-up step, loader excluded; load average {Machine.LoadAverageText()}");
    Console.WriteLine("| replicas | devices | total batch | best s / step | median s / step | images/s (best) | one device on the total batch, best s / step | replicas / one device | images/s vs 1 replica |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
    double? baseline = null;
    foreach (var count in counts)
    {
        if (gpus > 0 && count > gpus)
        {
            Console.WriteLine($"| {count} | this host has {gpus} CUDA device(s) | - | - | - | - | - | - | - |");
            continue;
        }
        var onGpus = gpus > 0;
        var (options, data) = Config(name, TrainingPrecision.Fp32);
        var total = perReplica * count;
        data = data with { BatchSize = total };
        var images = Synthetic(total * (steps + 1), 64);
        var loader = new SslBatchLoader(images, data, seed: 3);
        // The two layouts take turns step by step, so that a burst of load on the shared machine hits both alike.
        var (parallel, single, devices) = Time(options with { BatchSize = perReplica, DataParallelReplicas = count, ReplicasOnCpu = !onGpus },
            options with { BatchSize = total }, loader, steps);
        var imagesPerSecond = total / parallel.Best;
        if (count == 1)
            baseline = imagesPerSecond;
        Console.WriteLine($"| {count} | {devices} | {total} | {parallel.Best:F3} | {parallel.Median:F3} | {imagesPerSecond:F1} | {single.Best:F3} | {parallel.Best / single.Best:F2} | " +
                          $"{(baseline is { } one ? $"{imagesPerSecond / one:F2}x" : "-")} |");
    }
    Console.WriteLine($"load average {Machine.LoadAverageText()}");

    static ((double Best, double Median) Parallel, (double Best, double Median) Single, string Devices) Time(
        SslTrainerOptions parallelOptions, SslTrainerOptions singleOptions, SslBatchLoader loader, int steps)
    {
        using var parallel = new SslTrainer(parallelOptions with { Epochs = 1 }, loader.IterationsPerEpoch);
        using var single = new SslTrainer(singleOptions with { Epochs = 1 }, loader.IterationsPerEpoch);
        var parallelTimes = new List<double>();
        var singleTimes = new List<double>();
        for (var i = 0; i <= steps; i++)
        {
            using var batch = loader.Build(0, i);
            foreach (var (trainer, times) in new[] { (parallel, parallelTimes), (single, singleTimes) })
            {
                var clock = Stopwatch.StartNew();
                trainer.Step(batch);
                if (i > 0)
                    times.Add(clock.Elapsed.TotalSeconds);
            }
        }
        return (Summary(parallelTimes), Summary(singleTimes), string.Join(" ", parallel.Devices.Select(d => d.ToString())));
    }

    static (double Best, double Median) Summary(List<double> times)
    {
        times.Sort();
        return (times[0], times[times.Count / 2]);
    }

}

async Task LongRunAsync(string name, double minutes)
{
    var (options, data) = Config(name, TrainingPrecision.Fp32);
    var images = Synthetic(2048, 64);
    var loader = new SslBatchLoader(images, data with { Workers = 1 }, seed: 4);
    var epochs = 1000;
    using var trainer = new SslTrainer(options with { Epochs = epochs, Optim = options.Optim with { WarmupEpochs = 1 } }, loader.IterationsPerEpoch);
    Console.WriteLine();
    Console.WriteLine($"Memory over a {minutes:F0}-minute run of {name} (loader on a background thread, a dispose scope per step):");
    Console.WriteLine("| minute | steps | RSS MiB | managed MiB |");
    Console.WriteLine("|---|---|---|---|");
    var clock = Stopwatch.StartNew();
    var nextReport = 0.0;
    using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(minutes));
    var observer = new MemoryObserver(step =>
    {
        var elapsed = clock.Elapsed.TotalMinutes;
        if (elapsed < nextReport)
            return;
        nextReport += minutes / 10;
        var process = Process.GetCurrentProcess();
        Console.WriteLine($"| {elapsed:F1} | {step + 1} | {process.WorkingSet64 / (1024.0 * 1024):F0} | {GC.GetTotalMemory(false) / (1024.0 * 1024):F0} |");
    });
    var directory = Path.Combine(Path.GetTempPath(), $"nvdino-long-bench-{Environment.ProcessId}");
    try
    {
        await new TrainingLoop(trainer, loader, new TrainingLoopOptions { CheckpointDirectory = directory, CheckpointInterval = 1000 })
            .RunAsync(observer, cancel.Token);
    }
    catch (OperationCanceledException)
    {
    }
    finally
    {
        if (Directory.Exists(directory))
            Directory.Delete(directory, recursive: true);
    }
    var final = Process.GetCurrentProcess();
    Console.WriteLine($"| {clock.Elapsed.TotalMinutes:F1} | {trainer.GlobalStep} | {final.WorkingSet64 / (1024.0 * 1024):F0} | {GC.GetTotalMemory(false) / (1024.0 * 1024):F0} |");
}

(SslTrainerOptions Options, SslDataOptions Data) Config(string name, TrainingPrecision precision)
{
    // knn_net: the k-NN benchmark's network; vit_l14_224: the template's default recipe; vit_s14_224: ViT-S/14 with NVDINOv2's crops (2x224 + 8x98) and TAO's
    // heads (2048 hidden, 384 bottleneck, 131072 prototypes); vit_s14_224_small_head: the same with 4096 prototypes.
    var (backbone, head, batch, global, local, locals) = name switch
    {
        "knn_net" => (new BackboneConfig { EmbedDim = 128, Depth = 4, NumHeads = 4, ImgSize = 56, LayerScaleInit = null },
            new SslHeadOptions { HiddenDim = 512, BottleneckDim = 128, NumPrototypes = 1024 }, 64, 56, 28, 4),
        "knn_net_ls" => (new BackboneConfig { EmbedDim = 128, Depth = 4, NumHeads = 4, ImgSize = 56 },
            new SslHeadOptions { HiddenDim = 512, BottleneckDim = 128, NumPrototypes = 1024 }, 64, 56, 28, 4),
        "vit_s14_224" => (BackboneConfig.VitSmall(14, 224) with { DropPathRate = 0.1 }, new SslHeadOptions(), Int("--batch", 8), 224, 98, 8),
        "vit_s14_224_small_head" => (BackboneConfig.VitSmall(14, 224) with { DropPathRate = 0.1 },
            new SslHeadOptions { NumPrototypes = 4096 }, Int("--batch", 8), 224, 98, 8),
        "vit_b14_224" => (BackboneConfig.VitBase(14, 224) with { DropPathRate = 0.1 }, new SslHeadOptions(), Int("--batch", 4), 224, 98, 8),
        // The template's recipe (specs/train.yaml): ViT-L/14 with SwiGLU and drop path 0.4, TAO's heads, NVDINOv2's crops.
        "vit_l14_224" => (BackboneConfig.FromName("vit_l", 14, 224, FfnLayer.SwiGlu, dropPathRate: 0.4), new SslHeadOptions(), Int("--batch", 2), 224, 98, 8),
        _ => throw new ArgumentException($"unknown config '{name}'; use knn_net, vit_s14_224, vit_s14_224_small_head, vit_b14_224 or vit_l14_224"),
    };
    var options = new SslTrainerOptions
    {
        Backbone = backbone, Head = head, Epochs = 1, BatchSize = batch, Precision = precision,
        Optim = new SslOptimOptions { WarmupEpochs = 0 }, Seed = 2,
    };
    var data = new SslDataOptions
    {
        BatchSize = batch, PatchSize = 14,
        Crops = new MultiCropOptions { GlobalCropsSize = global, LocalCropsSize = local, LocalCropsNumber = locals },
        Workers = 0,
    };
    return (options, data);
}

InMemoryImageSource Synthetic(int count, int side)
{
    var random = new Random(5);
    var list = new List<DecodedImage>(count);
    for (var i = 0; i < count; i++)
    {
        var pixels = new byte[side * side * 3];
        random.NextBytes(pixels);
        list.Add(new DecodedImage(pixels, side, side, 3));
    }
    return new InMemoryImageSource(list);
}

string? Arg(string name) => cli.Get(name);

int Int(string name, int fallback) => cli.Int(name, fallback);

double Double(string name, double fallback) => cli.Double(name, fallback);

internal sealed class MemoryObserver(Action<long> onStep) : ITrainingObserver
{
    public void OnStep(TrainingStepResult step, double imagesPerSecond) => onStep(step.Step);

    public Task OnEpochEndAsync(EpochSummary summary, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task OnCheckpointAsync(SavedCheckpoint checkpoint, CancellationToken cancellationToken) => Task.CompletedTask;
}
