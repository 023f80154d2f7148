using System.Diagnostics;
using System.Globalization;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Benchmarks.Harness;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Inference;
using NvDinoPipeline.Inference.Output;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using StbImageWriteSharp;

// Images/s of the inference worker end to end (read + decode + pre-process + model + write + publish) next to a raw
// ONNX Runtime session running the same model on ready-made input tensors, and both next to the same-run reference
// GEMM (benchmarks/Harness) and, with --peer, the same forward in Debian's PyTorch (scripts/benchmark-peers.sh installs
// it): all take turns, round after round, medians of at least 5 timed rounds after a warm-up.
//   dotnet run -c Release --project benchmarks/Inference [-- --model vit_s] [--side 224] [--images 2000] [--batch 16]
//       [--repetitions 5] [--gemm-side 2048] [--source shards|png] [--overlap] [--peer] [--rabbitmq amqp://guest:guest@127.0.0.1:5672/]
//   dotnet run -c Release --project benchmarks/Inference -- reference    (the reference alone: record a quiet value)
//   dotnet run -c Release --project benchmarks/Inference -- scaling [--model vit_t] [--side 56] [--small 10000] [--large 100000]
//       [--queries 1000] [--image-width 64] [--image-height 48]   (the inference worker and the evaluation stage at two sizes)

var modelName = Arg("--model") ?? "vit_s";
var side = int.Parse(Arg("--side") ?? "224", CultureInfo.InvariantCulture);
var imageCount = int.Parse(Arg("--images") ?? "2000", CultureInfo.InvariantCulture);
var batch = int.Parse(Arg("--batch") ?? "16", CultureInfo.InvariantCulture);
var repetitions = int.Parse(Arg("--repetitions") ?? "5", CultureInfo.InvariantCulture);
var sourceKind = Arg("--source") ?? "shards";
var rabbit = Arg("--rabbitmq");
var gemmSide = int.Parse(Arg("--gemm-side") ?? "2048", CultureInfo.InvariantCulture);
Console.WriteLine($"Machine: {Machine.Describe()}; ONNX Runtime {OrtEnv.Instance().GetVersionString()} ({string.Join(", ", OrtEnv.Instance().GetAvailableProviders())})");
if (args.Contains("reference"))
{
    using var alone = new Interleaved(Math.Max(repetitions, 7), gemmSide: gemmSide);
    var measured = await alone.RunAsync();
    measured.PrintMedians();
    Console.WriteLine($"Quiet value to record in benchmarks/Harness/quiet-reference.json when the load average above was near 0:");
    Console.WriteLine(QuietReference.Entry(alone.Gemm.Side, measured.ReferenceGflops));
    return;
}
var folder = Path.Combine(Path.GetTempPath(), $"nvdino-inference-bench-{Environment.ProcessId}");
Directory.CreateDirectory(folder);
if (args.Contains("scaling"))
{
    try
    {
        await using var scalingWorker = await WorkerBench.StartAsync(folder, rabbit);
        await Scaling.RunAsync(folder, scalingWorker, Arg("--model") ?? "vit_t", int.Parse(Arg("--side") ?? "56", CultureInfo.InvariantCulture),
            int.Parse(Arg("--small") ?? "10000", CultureInfo.InvariantCulture), int.Parse(Arg("--large") ?? "100000", CultureInfo.InvariantCulture),
            int.Parse(Arg("--queries") ?? "1000", CultureInfo.InvariantCulture), int.Parse(Arg("--image-width") ?? "64", CultureInfo.InvariantCulture),
            int.Parse(Arg("--image-height") ?? "48", CultureInfo.InvariantCulture), batch, repetitions, gemmSide);
    }
    finally
    {
        Directory.Delete(folder, recursive: true);
    }
    return;
}

try
{
    var (modelPath, metadataPath, dimension, imageFlops) = RandomBackbone.Export(modelName, side, Path.Combine(folder, "model"));
    var dataset = await MakeDatasetAsync(Path.Combine(folder, "test"), imageCount, sourceKind);
    Console.WriteLine($"Inference benchmark: {modelName} ({dimension}-float embeddings, {imageFlops / 1e9:F2} GFLOP per image) at {side}x{side}, " +
        $"{imageCount} images of 384x288 ({sourceKind}), batch {batch}, results over {(rabbit is null ? "MassTransit in-memory transport" : "RabbitMQ")}");

    await using var worker = await WorkerBench.StartAsync(folder, rabbit);
    using var raw = new RawSession(modelPath, side, batch);
    using var bench = new Interleaved(repetitions, gemmSide: gemmSide);
    bench.Add("raw ORT session", "images/s", () => raw.ImagesPerSecond(imageCount));
    bench.Add("inference worker, whole job", "images/s", async () => await worker.RunAsync(modelPath, metadataPath, dataset, batch, imageCount, OverlapMode.Auto));
    using var peer = args.Contains("--peer")
        ? PythonPeer.TryStart("vit_forward.py", string.Create(CultureInfo.InvariantCulture,
            $"--dim {dimension} --depth {RandomBackbone.Depth(modelName)} --heads {dimension / 64} --side {side} --batch {batch} --threads {Environment.ProcessorCount}"))
        : null;
    if (peer is not null)
    {
        Console.WriteLine($"Peer: the same ViT forward in Debian's PyTorch ({peer.Description}), on ready-made tensors like the raw session.");
        bench.Add("peer PyTorch forward", "images/s", () => peer.ImagesPerSecond(imageCount));
    }
    if (args.Contains("--overlap"))
    {
        bench.Add("inference worker overlapped, whole job", "images/s",
            async () => await worker.RunAsync(modelPath, metadataPath, dataset, batch, imageCount, OverlapMode.Always));
    }
    var result = await bench.RunAsync();
    result.PrintMedians();

    var rawRate = result.Median("raw ORT session");
    var rawGflops = rawRate * imageFlops / 1e9;
    var sessionRatio = rawGflops / result.ReferenceGflops;
    var workerRatio = result.Median("inference worker, whole job") / rawRate;
    Console.WriteLine();
    Console.WriteLine("| figure | ratio | target | verdict |");
    Console.WriteLine("|---|---|---|---|");
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| raw session {rawGflops:F1} GFLOP/s / reference GEMM {result.ReferenceGflops:F1} GFLOP/s | {sessionRatio:F3} | ≥ 0.85 | {result.Verdict(sessionRatio, 0.85)} |"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| inference worker (whole job) / raw session | {workerRatio:F3} | ≥ 0.95 on ≥ 2 000 images | " +
        $"{(imageCount < 2000 ? $"no verdict: {imageCount} images" : result.Verdict(workerRatio, 0.95))} |"));
    if (peer is not null)
    {
        var peerRatio = rawRate / result.Median("peer PyTorch forward");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| raw session / peer PyTorch forward | {peerRatio:F2} | (a peer, no target) | |"));
    }
}
finally
{
    Directory.Delete(folder, recursive: true);
}

static async Task<string> MakeDatasetAsync(string folder, int count, string kind)
{
    const int width = 384, height = 288;
    var rng = new Random(5);
    Directory.CreateDirectory(folder);
    await using var shardFile = kind == "shards" ? File.Create(Path.Combine(folder, "shard-00000.bin")) : null;
    var shard = shardFile is null ? null : new ShardWriter(shardFile);
    for (var i = 0; i < count; i++)
    {
        var rgb = new byte[width * height * 3];
        var (fx, fy) = (rng.Next(1, 9), rng.Next(1, 9));
        for (var p = 0; p < width * height; p++)
        {
            var (x, y) = (p % width, p / width);
            rgb[3 * p] = (byte)(x * fx + y);
            rgb[3 * p + 1] = (byte)(y * fy + x / 2);
            rgb[3 * p + 2] = (byte)(rng.Next(64) + (x ^ y));
        }
        using var png = new MemoryStream();
        new ImageWriter().WritePng(rgb, width, height, ColorComponents.RedGreenBlue, png);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(png.ToArray()));
        if (shard is not null)
        {
            await shard.AddAsync(rgb, width, height, $"test/{i:D5}.png", sha, CancellationToken.None);
        }
        else
        {
            await File.WriteAllBytesAsync(Path.Combine(folder, $"{i:D5}.png"), png.ToArray());
        }
    }
    if (shard is not null)
    {
        await shard.CompleteAsync(CancellationToken.None);
        await shardFile!.DisposeAsync();
    }
    return new Uri(folder + "/").AbsoluteUri;
}

string? Arg(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

/// <summary>Raw ONNX Runtime: the same model and batch on pre-filled tensors, with ONNX Runtime's defaults (threads spin).</summary>
internal sealed class RawSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtValue _input;
    private readonly int _batch;

    public RawSession(string modelPath, int side, int batch)
    {
        _batch = batch;
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        _session = new InferenceSession(modelPath, options);
        var input = new float[batch * 3 * side * side];
        var rng = new Random(3);
        for (var i = 0; i < input.Length; i++)
        {
            input[i] = rng.NextSingle() * 4 - 2;
        }
        _input = OrtValue.CreateTensorValueFromMemory(input, [batch, 3, side, side]);
    }

    public double ImagesPerSecond(int images)
    {
        using var runOptions = new RunOptions();
        var runs = (images + _batch - 1) / _batch;
        var clock = Stopwatch.StartNew();
        for (var r = 0; r < runs; r++)
        {
            using var outputs = _session.Run(runOptions, ["input"], [_input], ["output"]);
        }
        return runs * _batch / clock.Elapsed.TotalSeconds;
    }

    public void Dispose()
    {
        _session.Dispose();
        _input.Dispose();
    }
}

/// <summary>The inference runner with a file artifact store and a real MassTransit bus whose consumer counts the delivered results.</summary>
internal sealed partial class WorkerBench : IAsyncDisposable
{
    private readonly ServiceProvider _provider;
    private readonly string _folder;

    private WorkerBench(ServiceProvider provider, string folder)
    {
        _provider = provider;
        _folder = folder;
    }

    public static async Task<WorkerBench> StartAsync(string folder, string? rabbitMq)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ArtifactStore:Root"] = new Uri(Path.Combine(folder, "artifacts") + "/").AbsoluteUri,
            ["ArtifactStore:AllowedReadRoots:0"] = folder,
        }).Build();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddArtifactStore(configuration);
        services.AddSingleton(Options.Create(new InferenceOptions()));
        services.AddSingleton<IInferenceHardware, NativeInferenceHardware>();
        services.AddSingleton<DeployedModelLoader>();
        services.AddSingleton<ResultCounter>();
        services.AddMassTransit(bus =>
        {
            bus.AddConsumer<ResultCounterConsumer>();
            if (rabbitMq is null)
            {
                bus.UsingInMemory((context, cfg) => cfg.ConfigureEndpoints(context));
            }
            else
            {
                bus.UsingRabbitMq((context, cfg) =>
                {
                    cfg.Host(new Uri(rabbitMq));
                    cfg.ConfigureEndpoints(context);
                });
            }
        });
        var provider = services.BuildServiceProvider();
        await provider.GetRequiredService<IBusControl>().StartAsync();
        return new WorkerBench(provider, folder);
    }

    public async Task<double> RunAsync(string modelPath, string metadataPath, string dataset, int batch, int images,
        OverlapMode overlap)
    {
        var counter = _provider.GetRequiredService<ResultCounter>();
        var store = _provider.GetRequiredService<IArtifactStore>();
        var pipelineId = NewId.NextGuid();
        var jobId = NewId.NextGuid();
        var spec = SpecLoader.CreateDefault().Resolve([], [$"inference.batch_size={batch}"]);
        var command = new RunInference
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = spec.ToJson(),
            OutputUri = store.JobFolder(pipelineId, jobId),
            DeployArtifactUri = new Uri(modelPath),
            Target = DeployedModelReference.OnnxRuntimeTarget,
            ModelMetadataUri = new Uri(metadataPath),
            DatasetUri = new Uri(dataset),
            ManifestUri = new Uri(new Uri(dataset), "manifest.jsonl"),
        };
        var context = NewContext(command, PipelineStage.Inference, spec);
        counter.Reset(jobId);
        var options = Options.Create(new InferenceOptions { OverlapPreprocessing = overlap });
        var runner = new InferenceRunner(store, _provider.GetRequiredService<IBus>(), _provider.GetRequiredService<IBus>(), _provider.GetRequiredService<DeployedModelLoader>(), options,
            _provider.GetRequiredService<ILogger<InferenceRunner>>());
        var clock = Stopwatch.StartNew();
        var result = await runner.RunAsync(command, context, CancellationToken.None);
        await counter.WaitForAsync(images);
        var elapsed = clock.Elapsed.TotalSeconds;
        return images / elapsed;
    }

    /// <summary>A job's context with its own scratch folder and no progress reporting.</summary>
    private StageContext NewContext(IStageCommand command, PipelineStage stage, ResolvedSpec spec)
    {
        var scratch = Path.Combine(_folder, "scratch", command.JobId.ToString());
        Directory.CreateDirectory(scratch);
        return new StageContext(command, stage, spec, command.OutputUri, scratch, NullLogger.Instance, (_, _, _) => Task.CompletedTask);
    }

    public async ValueTask DisposeAsync()
    {
        await _provider.GetRequiredService<IBusControl>().StopAsync();
        await _provider.DisposeAsync();
    }
}

internal sealed class ResultCounter
{
    private readonly Lock _lock = new();
    private Guid _jobId;
    private int _count;
    private TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _target = int.MaxValue;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    public void Reset(Guid jobId)
    {
        lock (_lock)
        {
            _jobId = jobId;
            _count = 0;
            _target = int.MaxValue;
            _reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public void Add(EmbeddingsBatch batch)
    {
        lock (_lock)
        {
            if (batch.JobId != _jobId)
            {
                return;
            }
            _count += batch.Items.Count;
            if (_count >= _target)
            {
                _reached.TrySetResult();
            }
        }
    }

    public Task WaitForAsync(int count)
    {
        lock (_lock)
        {
            _target = count;
            if (_count >= count)
            {
                _reached.TrySetResult();
            }
            return _reached.Task.WaitAsync(TimeSpan.FromMinutes(2) + TimeSpan.FromMilliseconds(5.0 * count));
        }
    }
}

internal sealed class ResultCounterConsumer(ResultCounter counter) : IConsumer<EmbeddingsBatch>
{
    public Task Consume(ConsumeContext<EmbeddingsBatch> context)
    {
        counter.Add(context.Message);
        return Task.CompletedTask;
    }
}
