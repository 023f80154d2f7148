using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Benchmarks.Harness;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Evaluation;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Inference;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;

/// <summary>
/// The inference worker and the evaluation stage on a small and a ten times larger set of the same kind of images, taking
/// turns with the same-run reference GEMM: images per second of each (whole job, model loading included) and the peak
/// resident memory each job added to the process (the kernel's high-water mark, reset before every job after a full
/// garbage collection). Evaluation scores a fixed set of labelled queries against a gallery of either size, so the k-NN's
/// work per gallery image is the same at both sizes.
/// </summary>
internal static class Scaling
{
    public static async Task RunAsync(string folder, WorkerBench worker, string modelName, int side, int small, int large, int queries,
        int imageWidth, int imageHeight, int batch, int repetitions, int gemmSide)
    {
        var (modelPath, metadataPath, dimension, imageFlops) = RandomBackbone.Export(modelName, side, Path.Combine(folder, "model"));
        var clock = Stopwatch.StartNew();
        var smallSet = await MakeLabelledAsync(Path.Combine(folder, "small"), small, imageWidth, imageHeight, seed: 1);
        var largeSet = await MakeLabelledAsync(Path.Combine(folder, "large"), large, imageWidth, imageHeight, seed: 2);
        var querySet = await MakeLabelledAsync(Path.Combine(folder, "queries"), queries, imageWidth, imageHeight, seed: 3);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Scaling: {modelName} ({dimension}-float embeddings, {imageFlops / 1e9:F3} GFLOP per image) at {side}x{side}; {small} and {large} images of " +
            $"{imageWidth}x{imageHeight} in 10 class folders (staged shards, made in {clock.Elapsed.TotalSeconds:F0} s); evaluation: {queries} labelled " +
            $"queries against each as the gallery (k-NN on the four feature sets; the linear probe off); batch {batch}"));

        var peaks = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        using var bench = new Interleaved(repetitions, gemmSide: gemmSide);
        void Add(string name, int images, Func<Task<double>> run) =>
            bench.Add(name, "images/s", async () =>
            {
                var (rate, added) = await PeakRss.MeasureAsync(run);
                (peaks.TryGetValue(name, out var list) ? list : peaks[name] = []).Add(added);
                return rate;
            });
        Add($"inference {small}", small, () => worker.RunAsync(modelPath, metadataPath, smallSet, batch, small, OverlapMode.Auto));
        Add($"inference {large}", large, () => worker.RunAsync(modelPath, metadataPath, largeSet, batch, large, OverlapMode.Auto));
        Add($"evaluation gallery {small}", small + queries, () => worker.EvaluateAsync(modelPath, metadataPath, querySet, smallSet, small + queries, queries));
        Add($"evaluation gallery {large}", large + queries, () => worker.EvaluateAsync(modelPath, metadataPath, querySet, largeSet, large + queries, queries));
        var result = await bench.RunAsync();
        result.PrintMedians();
        Console.WriteLine();
        Console.WriteLine("Where the evaluation's time went, in its last timed run (evaluation.json):");
        foreach (var (gallery, report) in worker.LastEvaluations.OrderBy(e => e.Key))
        {
            var knn = string.Join(", ", report.Results!.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Key} {r.Value.KnnSeconds:F1} s")));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  gallery {gallery}: {report.Seconds:F1} s, embedding {report.EmbeddingSeconds:F1} s, k-NN {knn}"));
        }

        Console.WriteLine();
        Console.WriteLine("| stage | images/s small / large | large / small | target | peak memory added, MiB small / large | verdict |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var stage in new[] { "inference", "evaluation gallery" })
        {
            var (smallName, largeName) = ($"{stage} {small}", $"{stage} {large}");
            var ratio = result.Median(largeName) / result.Median(smallName);
            var (smallPeak, largePeak) = (Median(peaks[smallName]), Median(peaks[largeName]));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {stage} | {result.Median(smallName):F0} / {result.Median(largeName):F0} | {ratio:F3} | ≥ 0.90 | {smallPeak:F0} / {largePeak:F0} | " +
                $"{result.Verdict(ratio, 0.90)} |"));
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>A staged dataset (one shard) of <paramref name="count"/> images in 10 class folders, each class its own pattern.</summary>
    private static async Task<string> MakeLabelledAsync(string folder, int count, int width, int height, int seed)
    {
        var rng = new Random(seed);
        Directory.CreateDirectory(folder);
        await using (var file = File.Create(Path.Combine(folder, "shard-00000.bin")))
        {
            var shard = new ShardWriter(file);
            var rgb = new byte[width * height * 3];
            for (var i = 0; i < count; i++)
            {
                var label = i % 10;
                var (fx, fy) = (label + 1, 10 - label);
                for (var p = 0; p < width * height; p++)
                {
                    var (x, y) = (p % width, p / width);
                    rgb[3 * p] = (byte)(x * fx + y * fy + rng.Next(48));
                    rgb[3 * p + 1] = (byte)((x ^ y) * fx + rng.Next(48));
                    rgb[3 * p + 2] = (byte)(y * fy + rng.Next(48));
                }
                var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(rgb));
                await shard.AddAsync(rgb, width, height, $"class-{label}/{i:D6}.png", sha, CancellationToken.None);
            }
            await shard.CompleteAsync(CancellationToken.None);
        }
        return new Uri(folder + "/").AbsoluteUri;
    }
}

/// <summary>The peak resident memory a piece of work adds to this process (Linux: VmRSS and VmHWM of /proc/self/status).</summary>
internal static class PeakRss
{
    public static async Task<(double Result, double AddedMiB)> MeasureAsync(Func<Task<double>> work)
    {
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var before = Read("VmRSS:");
        // Writing 5 to clear_refs resets the high-water mark to the current resident size.
        File.WriteAllText("/proc/self/clear_refs", "5");
        var result = await work();
        return (result, (Read("VmHWM:") - before) / 1024.0);
    }

    private static double Read(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return double.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }
}

internal sealed partial class WorkerBench
{
    /// <summary>The evaluation stage's runner end to end: images per second over the queries and the gallery together.</summary>
    public Dictionary<int, EvaluationReport> LastEvaluations { get; } = [];

    public async Task<double> EvaluateAsync(string modelPath, string metadataPath, string queries, string gallery, int images, int queriesCount)
    {
        var store = _provider.GetRequiredService<IArtifactStore>();
        var (pipelineId, jobId) = (NewId.NextGuid(), NewId.NextGuid());
        // Without the linear probe: its steps see at most LinearProbe.BatchValues feature values each, so its cost does not
        // grow with the gallery, and on 3 072 pooled pixels it takes about a minute a feature set at either size.
        var spec = SpecLoader.CreateDefault().Resolve([], ["evaluate.linear_probe=false"]);
        var command = new EvaluateModel
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = spec.ToJson(),
            OutputUri = store.JobFolder(pipelineId, jobId),
            DeployArtifactUri = new Uri(modelPath),
            Target = DeployedModelReference.OnnxRuntimeTarget,
            ModelMetadataUri = new Uri(metadataPath),
            TestDatasetUri = new Uri(queries),
            TrainDatasetUri = new Uri(gallery),
        };
        var context = NewContext(command, PipelineStage.Evaluation, spec);
        var runner = new EvaluationRunner(store, _provider.GetRequiredService<DeployedModelLoader>(), Options.Create(new InferenceOptions()),
            NullLogger<EvaluationRunner>.Instance);
        var clock = Stopwatch.StartNew();
        var result = await runner.RunAsync(command, context, CancellationToken.None);
        var elapsed = clock.Elapsed.TotalSeconds;
        if (result.Completed is not { Evaluated: true } evaluated)
        {
            throw new InvalidOperationException($"The evaluation scored nothing: {result.Completed.Reason}");
        }
        LastEvaluations[images - queriesCount] = JsonSerializer.Deserialize<EvaluationReport>(
            await File.ReadAllTextAsync(evaluated.EvaluationUri.LocalPath), EvaluationReport.Json)!;
        Directory.Delete(context.ScratchDirectory, recursive: true);
        return images / elapsed;
    }
}
