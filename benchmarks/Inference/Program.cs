using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Inference;
using NvDinoPipeline.Inference.Output;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using StbImageWriteSharp;

// Images/s of the inference worker end to end (read + decode + pre-process + model + write + publish) next to
// raw ONNX Runtime running the same model on ready-made input tensors, on this machine, rounds interleaved.
//   dotnet run -c Release --project benchmarks/Inference [-- --model vit_s] [--side 224] [--images 256] [--batch 16]
//       [--rounds 3] [--source shards|png] [--rabbitmq amqp://guest:guest@127.0.0.1:5672/]
var modelName = Arg("--model") ?? "vit_s";
var side = int.Parse(Arg("--side") ?? "224", CultureInfo.InvariantCulture);
var imageCount = int.Parse(Arg("--images") ?? "256", CultureInfo.InvariantCulture);
var batch = int.Parse(Arg("--batch") ?? "16", CultureInfo.InvariantCulture);
var rounds = int.Parse(Arg("--rounds") ?? "3", CultureInfo.InvariantCulture);
var sourceKind = Arg("--source") ?? "shards";
var rabbit = Arg("--rabbitmq");
var folder = Path.Combine(Path.GetTempPath(), $"nvdino-inference-bench-{Environment.ProcessId}");
Directory.CreateDirectory(folder);

try
{
    var (modelPath, metadataPath, dimension) = RandomBackbone.Export(modelName, side, Path.Combine(folder, "model"));
    var dataset = await MakeDatasetAsync(Path.Combine(folder, "test"), imageCount, sourceKind);
    Console.WriteLine($"Inference benchmark: {modelName} ({dimension}-float embeddings) at {side}x{side}, {imageCount} images of 384x288 ({sourceKind}), batch {batch}, " +
        $"{Environment.ProcessorCount} cores, ONNX Runtime {OrtEnv.Instance().GetVersionString()} ({string.Join(", ", OrtEnv.Instance().GetAvailableProviders())}), " +
        $"results over {(rabbit is null ? "MassTransit in-memory transport" : "RabbitMQ")}");

    await using var worker = await WorkerBench.StartAsync(folder, rabbit);
    var raw = new List<double>();
    var modes = new[] { OverlapMode.Never, OverlapMode.Always };
    var steady = modes.ToDictionary(m => m, _ => new List<double>());
    var job = modes.ToDictionary(m => m, _ => new List<double>());
    for (var round = 0; round <= rounds; round++)
    {
        // The better of ONNX Runtime's defaults (spinning threads) and the worker's session settings (no spinning).
        var rawRate = Math.Max(RawOnnxRuntime(modelPath, side, imageCount, batch, spinning: true),
            RawOnnxRuntime(modelPath, side, imageCount, batch, spinning: false));
        var line = string.Create(CultureInfo.InvariantCulture, $"  {(round == 0 ? "warm-up" : $"round {round}")}: raw ORT {rawRate:F1} images/s");
        foreach (var mode in modes)
        {
            var (jobRate, steadyRate, delivered) = await worker.RunAsync(modelPath, metadataPath, dataset, batch, imageCount, mode);
            line += string.Create(CultureInfo.InvariantCulture,
                $" | worker, overlap {mode}: {steadyRate:F1} images/s (whole job {jobRate:F1}, {delivered} delivered)");
            if (round > 0)
            {
                steady[mode].Add(steadyRate);
                job[mode].Add(jobRate);
            }
        }
        Console.WriteLine(line);
        if (round > 0)
        {
            raw.Add(rawRate);
        }
    }
    var rawMedian = Median(raw);
    Console.WriteLine();
    Console.WriteLine("| model | side | batch | images | input | raw ORT images/s | worker: pre-processing overlapped | worker: taking turns (auto on CPU) | whole job (turns) |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
    string Cell(double rate) => string.Create(CultureInfo.InvariantCulture, $"{rate:F1} ({(1 - rate / rawMedian) * 100:F1}% overhead)");
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {modelName} | {side} | {batch} | {imageCount} | {sourceKind} | {rawMedian:F1} | {Cell(Median(steady[OverlapMode.Always]))} | {Cell(Median(steady[OverlapMode.Never]))} | {Median(job[OverlapMode.Never]):F1} |"));
}
finally
{
    Directory.Delete(folder, recursive: true);
}

// Raw ONNX Runtime: the same model and batch on pre-filled tensors.
static double RawOnnxRuntime(string modelPath, int side, int images, int batch, bool spinning)
{
    using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
    options.AddSessionConfigEntry("session.intra_op.allow_spinning", spinning ? "1" : "0");
    using var session = new InferenceSession(modelPath, options);
    var input = new float[batch * 3 * side * side];
    var rng = new Random(3);
    for (var i = 0; i < input.Length; i++)
    {
        input[i] = rng.NextSingle() * 4 - 2;
    }
    using var value = OrtValue.CreateTensorValueFromMemory(input, [batch, 3, side, side]);
    using var runOptions = new RunOptions();
    session.Run(runOptions, ["input"], [value], ["output"]).Dispose();
    var runs = (images + batch - 1) / batch;
    var clock = Stopwatch.StartNew();
    for (var r = 0; r < runs; r++)
    {
        using var outputs = session.Run(runOptions, ["input"], [value], ["output"]);
    }
    return runs * batch / clock.Elapsed.TotalSeconds;
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

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

string? Arg(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

/// <summary>The inference runner with a file artifact store and a real MassTransit bus whose consumer counts the delivered results.</summary>
internal sealed class WorkerBench : IAsyncDisposable
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

    public async Task<(double JobRate, double SteadyRate, int Delivered)> RunAsync(string modelPath, string metadataPath, string dataset, int batch, int images,
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
        var scratch = Path.Combine(_folder, "scratch", jobId.ToString());
        Directory.CreateDirectory(scratch);
        var context = new StageContext(command, PipelineStage.Inference, spec, command.OutputUri, scratch, NullLogger.Instance,
            (_, _, _) => Task.CompletedTask);
        counter.Reset(jobId);
        var options = Options.Create(new InferenceOptions { OverlapPreprocessing = overlap });
        var runner = new InferenceRunner(store, _provider.GetRequiredService<IBus>(), _provider.GetRequiredService<IBus>(), _provider.GetRequiredService<DeployedModelLoader>(), options,
            _provider.GetRequiredService<ILogger<InferenceRunner>>());
        var clock = Stopwatch.StartNew();
        var result = await runner.RunAsync(command, context, CancellationToken.None);
        await counter.WaitForAsync(images);
        var elapsed = clock.Elapsed.TotalSeconds;
        var summary = JsonSerializer.Deserialize<InferenceSummary>(await File.ReadAllTextAsync(result.Artifacts[EmbeddingFiles.SummaryArtifact].LocalPath), InferenceSummary.Json)!;
        return (images / elapsed, summary.ImagesPerSecond, counter.Count);
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
            return _reached.Task.WaitAsync(TimeSpan.FromMinutes(2));
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
