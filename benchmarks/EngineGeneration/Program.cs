using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using NvDinoPipeline.Benchmarks.Harness;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.EngineGeneration;
using NvDinoPipeline.EngineGeneration.TensorRt;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using ModelMetadata = NvDinoPipeline.Deployment.ModelMetadata;
using MsOptions = Microsoft.Extensions.Options.Options;

// Runs the engine generation worker (target onnxruntime) for fp32 and for int8 calibrated on Fashion-MNIST, then
// measures on this CPU:
//  1. speed, on a DINOv2 ViT with random weights (FLOPs do not depend on the weights): fp32 and int8 throughput,
//     the fp32 artifact's achieved GFLOP/s next to a plain fp32 MatMul's, int8's cosine to fp32 on held-out images;
//  2. k-NN accuracy on Fashion-MNIST of fp32 and int8 embeddings of a small backbone trained here by
//     self-supervision for a bounded time (--train-minutes 0: the random-init network instead; --model: an
//     exported model.onnx, run at --knn-image pixels).
//   dotnet run -c Release --project benchmarks/EngineGeneration [-- --backbone vit_s --image 224 --batch 8 --repetitions 5 --runs 4
//       --method entropy --knn-train 2000 --knn-test 1000 --train-minutes 10 --train-images 10000 --threads 2]
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var backbone = Arg("--backbone") ?? "vit_s";
var imageSize = Int("--image", 224);
var batch = Int("--batch", 8);
var repetitions = Int("--repetitions", 5);
var runsPerRepetition = Int("--runs", 4);
var method = Arg("--method") ?? "entropy";
var knnTrain = Int("--knn-train", 2000);
var knnTest = Int("--knn-test", 1000);
var trainMinutes = double.Parse(Arg("--train-minutes") ?? "10", CultureInfo.InvariantCulture);
var trainImages = Int("--train-images", 10000);
var trainEpochs = Int("--train-epochs", 4);
var threads = Int("--threads", Environment.ProcessorCount);
var givenModel = Arg("--model");
var parts = (Arg("--parts") ?? "speed,knn").Split(',');

var root = Path.Combine(Path.GetTempPath(), $"nvdino-engine-bench-{Environment.ProcessId}");
Directory.CreateDirectory(root);
try
{
    var train = FashionMnist.Load("train");
    var test = FashionMnist.Load("t10k");
    using var store = new ArtifactStore(MsOptions.Create(new ArtifactStoreOptions { Root = new Uri(Path.Combine(root, "artifacts") + "/").AbsoluteUri }));
    var pipelineId = Guid.NewGuid();
    var specs = SpecLoader.CreateDefault();
    var options = new EngineGenerationOptions { IntraOpThreads = threads };
    var runner = new EngineGenerationRunner(store, new TrtexecLocator(MsOptions.Create(options)), MsOptions.Create(options), TimeProvider.System,
        NullLogger<EngineGenerationRunner>.Instance);

    // The staged dataset: Fashion-MNIST training images 0..1999, for calibration and the job's own held-out check.
    var shards = store.JobFolder(pipelineId, Guid.NewGuid()).Append("shards/");
    var shardPath = Path.Combine(root, "shard-00000.bin");
    await using (var stream = File.Create(shardPath))
    {
        var writer = new ShardWriter(stream);
        for (var i = 0; i < 2000; i++)
        {
            var rgb = train.Rgb(i);
            await writer.AddAsync(rgb, FashionMnist.Side, FashionMnist.Side, $"train/{i:D5}.png", Convert.ToHexStringLower(SHA256.HashData(rgb)), CancellationToken.None);
        }

        await writer.CompleteAsync(CancellationToken.None);
    }

    await store.PutFileAsync(shards.Append("shard-00000.bin"), shardPath, CancellationToken.None);

    Console.WriteLine($"Engine generation benchmark, {Environment.ProcessorCount} cores, {threads} ONNX Runtime threads, ONNX Runtime {OrtEnv.Instance().GetVersionString()}, " +
        $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; load average {Machine.LoadAverageText()}");

    if (parts.Contains("speed"))
    {
        await SpeedAsync();
    }

    if (parts.Contains("knn"))
    {
        await KnnAsync();
    }

    // 1. Speed.
    async Task SpeedAsync()
    {
        var speedConfig = Backbone.Config(backbone, imageSize);
        var speedModel = VitOnnxBuilder.Build(speedConfig, Backbone.RandomWeights(speedConfig, seed: 7), new VitExportOptions());
        var (fp32Job, int8Job) = await DeployAsync(speedModel, speedConfig, backbone);
        PrintJobs($"{backbone} (random weights) at {imageSize}x{imageSize}", fp32Job, int8Job);
        using (var fp32 = Session(fp32Job.Done.ArtifactUri.LocalPath))
        using (var int8 = Session(int8Job.Done.ArtifactUri.LocalPath))
        {
            var preprocessor = new ImagePreprocessor(new Preprocessing { Height = imageSize, Width = imageSize });
            var timingBatch = Preprocess(preprocessor, test, 9000, batch);
            using var bench = new Interleaved(repetitions, threads: threads);
            bench.Add("fp32 artifact", "images/s", () => Rate(fp32, timingBatch, batch, imageSize, runsPerRepetition));
            bench.Add("int8 artifact", "images/s", () => Rate(int8, timingBatch, batch, imageSize, runsPerRepetition));
            var measured = await bench.RunAsync();
            measured.PrintMedians();
            var (fp32Rate, int8Rate) = (measured.Median("fp32 artifact"), measured.Median("int8 artifact"));
            var heldOut = Preprocess(preprocessor, test, 8000, 64);
            var fidelity = EmbeddingFidelity.Compare(Embed(fp32, heldOut, 64, imageSize, speedConfig.EmbedDim), Embed(int8, heldOut, 64, imageSize, speedConfig.EmbedDim), speedConfig.EmbedDim);
            var flops = VitFlops.Forward(speedConfig.EmbedDim, speedConfig.Depth, speedConfig.PatchSize, imageSize, 4 * speedConfig.EmbedDim);
            var fp32Gflops = flops * fp32Rate / 1e9;
            var (sessionRatio, int8Ratio) = (fp32Gflops / measured.ReferenceGflops, int8Rate / fp32Rate);
            Console.WriteLine();
            Console.WriteLine($"| {backbone} {imageSize}x{imageSize}, batch {batch} (random weights) | value | target | verdict |");
            Console.WriteLine("|---|---|---|---|");
            Console.WriteLine($"| model FLOPs per image (analytic) | {flops / 1e9:F2} GFLOP | | |");
            Console.WriteLine($"| fp32 artifact | {fp32Rate:F1} images/s = {fp32Gflops:F0} GFLOP/s | | |");
            Console.WriteLine($"| fp32 artifact / same-run reference GEMM ({measured.ReferenceGflops:F0} GFLOP/s) | {sessionRatio:F2} | >= 0.85 | {measured.Verdict(sessionRatio, 0.85)} |");
            Console.WriteLine($"| int8 artifact / fp32 artifact | {int8Rate:F1} images/s = {int8Ratio:F2}x | >= 2x (on trained weights: these are random) | {measured.Verdict(int8Ratio, 2.0)} |");
            Console.WriteLine($"| int8 vs fp32, 64 held-out test images | mean cosine {fidelity.MeanCosine:F5}, min {fidelity.MinCosine:F5} | mean >= 0.99 | {(fidelity.MeanCosine >= 0.99 ? "met" : "not met")} |");
            Console.WriteLine($"load average {Machine.LoadAverageText()}");
        }
    }

    // 2. k-NN of fp32 and int8 embeddings.
    async Task KnnAsync()
    {
        ModelProto knnModel;
        VitGraphConfig knnConfig;
        string knnNote;
        if (givenModel is not null)
        {
            var loaded = OnnxModelReader.Load(givenModel, loadExternalData: true);
            var props = loaded.MetadataProps.ToDictionary(p => p.Key!, p => p.Value!);
            int Prop(string key) => int.Parse(props[key], CultureInfo.InvariantCulture);
            knnConfig = new VitGraphConfig { EmbedDim = Prop("embed_dim"), Depth = Prop("depth"), NumHeads = Prop("num_heads"), PatchSize = Prop("patch_size"), ImageSize = Int("--knn-image", Prop("image_size")) };
            knnModel = loaded;
            knnNote = $"given model {givenModel}";
        }
        else if (trainMinutes > 0)
        {
            (knnModel, knnConfig, knnNote) = await TrainedBackbone.TrainAsync(train, trainImages, trainEpochs, trainMinutes, threads);
        }
        else
        {
            knnConfig = Backbone.Config("vit_t", 56);
            knnModel = VitOnnxBuilder.Build(knnConfig, Backbone.RandomWeights(knnConfig, seed: 11), new VitExportOptions());
            knnNote = "vit_t at 56px with random weights (not trained: k-NN of a random-init network)";
        }

        var (knn32Job, knn8Job) = await DeployAsync(knnModel, knnConfig, "knn");
        PrintJobs(knnNote, knn32Job, knn8Job);
        using (var fp32 = Session(knn32Job.Done.ArtifactUri.LocalPath))
        using (var int8 = Session(knn8Job.Done.ArtifactUri.LocalPath))
        {
            var clock = Stopwatch.StartNew();
            var side = knnConfig.ImageSize;
            var d = knnConfig.EmbedDim;
            var preprocessor = new ImagePreprocessor(new Preprocessing { Height = side, Width = side });
            const int galleryFirst = 10_000;
            var galleryLabels = Enumerable.Range(galleryFirst, knnTrain).Select(train.Label).ToArray();
            var queryLabels = Enumerable.Range(0, knnTest).Select(test.Label).ToArray();
            var galleryInput = Preprocess(preprocessor, train, galleryFirst, knnTrain);
            var queryInput = Preprocess(preprocessor, test, 0, knnTest);
            var gallery32 = Embed(fp32, galleryInput, knnTrain, side, d);
            var gallery8 = Embed(int8, galleryInput, knnTrain, side, d);
            var query32 = Embed(fp32, queryInput, knnTest, side, d);
            var query8 = Embed(int8, queryInput, knnTest, side, d);
            var fidelity = EmbeddingFidelity.Compare(query32, query8, d);
            var knn32 = Knn.Accuracy(gallery32, galleryLabels, query32, queryLabels, d);
            var knn8 = Knn.Accuracy(gallery8, galleryLabels, query8, queryLabels, d);
            var knnPixels = Knn.Accuracy(Pixels(train, galleryFirst, knnTrain), galleryLabels, Pixels(test, 0, knnTest), queryLabels, FashionMnist.Side * FashionMnist.Side);
            Console.WriteLine();
            Console.WriteLine($"| k-NN (k=20, cosine, weighted T=0.07), {knnTrain} train / {knnTest} test images | accuracy | target |");
            Console.WriteLine("|---|---|---|");
            Console.WriteLine($"| raw pixels | {knnPixels:P1} | |");
            Console.WriteLine($"| fp32 artifact, CLS ({d}) | {knn32:P1} | |");
            Console.WriteLine($"| int8 artifact, CLS ({d}) | {knn8:P1} ({(knn8 - knn32) * 100:+0.0;-0.0;0.0} points) | within 1 point |");
            Console.WriteLine($"| int8 vs fp32 cosine on the {knnTest} test images | mean {fidelity.MeanCosine:F5}, min {fidelity.MinCosine:F5} | |");
            Console.WriteLine($"embedding and k-NN took {clock.Elapsed.TotalSeconds:F0} s; load average {Machine.LoadAverageText()}");
        }
    }

    async Task<(DeployedJob Fp32, DeployedJob Int8)> DeployAsync(ModelProto model, VitGraphConfig config, string name)
    {
        // The exported model, as the export stage leaves it: model.onnx + model.json.
        var exportFolder = store.JobFolder(pipelineId, Guid.NewGuid());
        var local = Path.Combine(root, $"{name}.onnx");
        OnnxModelWriter.Save(model, local);
        await store.PutFileAsync(exportFolder.Append("model.onnx"), local, CancellationToken.None);
        var metadata = new ModelMetadata
        {
            OnnxFile = "model.onnx",
            Opset = 17,
            Input = new TensorDescription("input", [-1, 3, config.ImageSize, config.ImageSize]),
            Outputs = [new TensorDescription("output", [-1, config.EmbedDim])],
            DynamicBatch = true,
            DynamicHeightWidth = false,
            Preprocessing = new Preprocessing { Height = config.ImageSize, Width = config.ImageSize },
            Backbone = new BackboneDescription
            {
                Type = name, PatchSize = config.PatchSize, EmbedDim = config.EmbedDim, Depth = config.Depth, NumHeads = config.NumHeads, TrainedImageSize = config.ImageSize,
            },
        };
        await using (var content = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(metadata.ToJson())))
        {
            await store.PutAsync(exportFolder.Append("model.json"), content, CancellationToken.None);
        }

        async Task<DeployedJob> GenerateAsync(params string[] overrides)
        {
            var spec = specs.Apply(specs.Defaults, overrides);
            var jobId = Guid.NewGuid();
            var command = new GenerateEngine
            {
                PipelineId = pipelineId, JobId = jobId, Spec = spec.ToJson(), OutputUri = store.JobFolder(pipelineId, jobId),
                OnnxModelUri = exportFolder.Append("model.onnx"), ModelMetadataUri = exportFolder.Append("model.json"), CalibrationDatasetUri = shards,
            };
            var scratch = Path.Combine(root, "scratch", jobId.ToString());
            Directory.CreateDirectory(scratch);
            var context = new StageContext(command, PipelineStage.EngineGeneration, spec, command.OutputUri, scratch, NullLogger.Instance,
                (_, _, _) => Task.CompletedTask);
            var clock = Stopwatch.StartNew();
            var result = await runner.RunAsync(command, context, CancellationToken.None);
            var manifest = Path.Combine(Path.GetDirectoryName(result.Completed.ArtifactUri.LocalPath)!, EngineManifest.FileName);
            return new DeployedJob(result.Completed, EngineManifest.FromJson(await File.ReadAllTextAsync(manifest), manifest), clock.Elapsed.TotalSeconds);
        }

        return (await GenerateAsync("gen_trt_engine.tensorrt.data_type=fp32"),
            await GenerateAsync("gen_trt_engine.tensorrt.data_type=int8", $"gen_trt_engine.tensorrt.calibration.method={method}"));
    }

    InferenceSession Session(string path) => new(path, new SessionOptions
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        IntraOpNumThreads = threads,
        LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
    });

    float[] Embed(InferenceSession session, float[] input, int count, int side, int dimension)
    {
        var imageFloats = 3 * side * side;
        var result = new float[count * dimension];
        for (var start = 0; start < count; start += batch)
        {
            var n = Math.Min(batch, count - start);
            Run(session, input[(start * imageFloats)..((start + n) * imageFloats)], n, side).CopyTo(result.AsSpan(start * dimension));
        }

        return result;
    }
}
finally
{
    Directory.Delete(root, recursive: true);
}

static void PrintJobs(string model, DeployedJob fp32, DeployedJob int8)
{
    Console.WriteLine();
    Console.WriteLine($"Engine generation jobs for {model}:");
    Console.WriteLine("| job | wall s | calibration | the job's own check on held-out images |");
    Console.WriteLine("|---|---|---|---|");
    foreach (var (name, job) in new[] { ("fp32", fp32), ("int8", int8) })
    {
        var c = job.Manifest.Calibration;
        var f = job.Manifest.Fidelity;
        var calibration = c is null ? "-" : $"{c.Method}{(c.RequestedMethod is { } asked ? $" (asked {asked}, which missed the bound)" : "")}, {c.Images} images, {c.QuantizedNodes} nodes quantised, {c.Seconds:F1} s";
        Console.WriteLine($"| onnxruntime {name} | {job.Seconds:F1} | {calibration} | mean cosine {f.MeanCosine:F5}, min {f.MinCosine:F5} on {f.ImageCount} |");
    }
}

static float[] Preprocess(ImagePreprocessor preprocessor, FashionMnist set, int first, int count)
{
    var x = new float[count * preprocessor.ImageSize];
    Parallel.For(0, count, i => preprocessor.Preprocess(set.Rgb(first + i), FashionMnist.Side, FashionMnist.Side,
        x.AsSpan(i * preprocessor.ImageSize, preprocessor.ImageSize)));
    return x;
}

static float[] Run(InferenceSession session, float[] input, int count, int side)
{
    using var value = OrtValue.CreateTensorValueFromMemory(input, [count, 3, side, side]);
    using var options = new RunOptions();
    using var results = session.Run(options, ["input"], [value], ["output"]);
    return results[0].GetTensorDataAsSpan<float>().ToArray();
}

// One repetition of a speed case: `runs` batches back to back, as images per second.
static double Rate(InferenceSession session, float[] input, int count, int side, int runs)
{
    var clock = Stopwatch.StartNew();
    for (var r = 0; r < runs; r++)
    {
        Run(session, input, count, side);
    }
    return runs * count / clock.Elapsed.TotalSeconds;
}

static float[] Pixels(FashionMnist set, int first, int count)
{
    var result = new float[count * FashionMnist.Side * FashionMnist.Side];
    for (var i = 0; i < count; i++)
    {
        var grey = set.Grey(first + i);
        for (var j = 0; j < grey.Length; j++)
        {
            result[i * grey.Length + j] = grey[j] / 255f - 0.5f;
        }
    }

    return result;
}


string? Arg(string flag)
{
    var i = Array.IndexOf(args, flag);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

int Int(string flag, int fallback) => Arg(flag) is { } value ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

internal sealed record DeployedJob(EngineGenerated Done, EngineManifest Manifest, double Seconds);
