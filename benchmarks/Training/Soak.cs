using System.Diagnostics;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;
using static TorchSharp.torch;

namespace NvDinoPipeline.Benchmarks.Training;

/// <summary>
/// Trains the k-NN benchmark's network again and again with the real loader (background threads, DINOv2's
/// augmentation) until the time is up, and after every run embeds test images with the teacher as the k-NN
/// benchmark does. A run that throws is recorded and the next one starts. With <c>gcPressure</c> a thread
/// collects garbage and runs finalizers without pause, which makes any object freed by its finalizer while
/// native code still uses it fail within minutes instead of once in hours.
/// </summary>
internal sealed class Soak(SslTrainerOptions options, SslDataOptions data, IImageSource images, IReadOnlyList<DecodedImage> embedImages, int printEvery)
{
    public void Run(TimeSpan duration, bool gcPressure)
    {
        var clock = Stopwatch.StartNew();
        var gen0Before = GC.CollectionCount(0);
        var pressure = gcPressure ? new ForcedCollections() : null;

        var runs = new List<SoakRun>();
        while (clock.Elapsed < duration)
        {
            var run = RunOnce(duration - clock.Elapsed, runs.Count + 1);
            runs.Add(run);
            Console.WriteLine($"run {runs.Count}: {run.Outcome}, {run.Steps} steps ({run.Steps * options.BatchSize} images) in {run.Minutes:F1} min" +
                              (run.Failure is null ? "" : $"\n{run.Failure}"));
        }
        var forced = pressure?.Stop();

        var failed = runs.Count(r => r.Failure is not null);
        Console.WriteLine();
        Console.WriteLine($"soak: {runs.Count} runs ({runs.Count(r => r.Outcome == "completed")} completed, {runs.Count(r => r.Outcome == "time up")} stopped by the clock, {failed} failed) " +
                          $"in {clock.Elapsed.TotalMinutes:F1} min: {runs.Sum(r => r.Steps)} steps, {runs.Sum(r => r.Steps) * options.BatchSize} images, " +
                          $"{runs.Sum(r => r.Embedded)} images embedded; {GC.CollectionCount(0) - gen0Before} gen-0 collections" +
                          (forced is { } count ? $" ({count} forced)" : "") + $", {data.Workers} loader threads");
    }

    private SoakRun RunOnce(TimeSpan left, int number)
    {
        var clock = Stopwatch.StartNew();
        var loader = new SslBatchLoader(images, data, options.Seed + number);
        var observer = new ConsoleObserver($"run {number}", options.Epochs * loader.IterationsPerEpoch, printEvery);
        var directory = Path.Combine(Path.GetTempPath(), $"nvdino-soak-{Environment.ProcessId}-{number}");
        using var trainer = new SslTrainer(options with { Seed = options.Seed + number }, loader.IterationsPerEpoch);
        using var deadline = new CancellationTokenSource(left);
        var outcome = "completed";
        try
        {
            try
            {
                new TrainingLoop(trainer, loader, new TrainingLoopOptions { CheckpointDirectory = directory, CheckpointInterval = options.Epochs })
                    .RunAsync(observer, deadline.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                outcome = "time up";
            }
            var embedded = Embed(trainer);
            return new SoakRun(outcome, trainer.GlobalStep, embedded, clock.Elapsed.TotalMinutes, null);
        }
        catch (Exception e)
        {
            return new SoakRun("failed", trainer.GlobalStep, 0, clock.Elapsed.TotalMinutes, e.ToString());
        }
        finally
        {
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
        }
    }

    // The first crash came from embedding after training: embed as the k-NN benchmark does and check every value.
    private int Embed(SslTrainer trainer)
    {
        using var features = Knn.Embed(trainer.Teacher.Backbone, embedImages, options.Backbone.ImgSize);
        using var finite = features.isfinite().all();
        if (!finite.item<bool>() || features.shape[0] != embedImages.Count)
            throw new InvalidOperationException($"Embedding returned [{string.Join(", ", features.shape)}] with non-finite values: {!finite.item<bool>()}.");
        return embedImages.Count;
    }

    private sealed record SoakRun(string Outcome, long Steps, int Embedded, double Minutes, string? Failure);
}

/// <summary>
/// The race behind the soak's failures in isolation: <c>x.mul(k)</c> in a loop while another thread collects garbage and
/// runs finalizers without pause, once with TorchSharp's implicit Scalar and once with <see cref="Model.HeldScalars"/>.
/// </summary>
internal static class ScalarRace
{
    public static void Run(TimeSpan each)
    {
        foreach (var held in new[] { false, true })
        {
            var pressure = new ForcedCollections();
            using var x = ones(8);
            var random = new Random(1);
            var clock = Stopwatch.StartNew();
            long calls = 0, wrong = 0, failed = 0;
            string? first = null;
            while (clock.Elapsed < each)
            {
                using var scope = NewDisposeScope();
                var k = random.Next(1, 1000) * 0.5;
                try
                {
                    var y = held ? Model.HeldScalars.Times(x, k) : x.mul(k);
                    if (y.data<float>()[0] != (float)k)
                        wrong++;
                }
                catch (Exception e)
                {
                    failed++;
                    first ??= e.Message.Split('\n')[0];
                }
                calls++;
            }
            var collections = pressure.Stop();
            Console.WriteLine($"| {(held ? "HeldScalars.Times(x, k)" : "x.mul(k), implicit Scalar")} | {clock.Elapsed.TotalSeconds:F0} | {calls} | {collections} | {failed} | {wrong} |" +
                              (first is null ? "" : $" first: {first}"));
        }
    }
}

/// <summary>A thread that collects garbage and runs finalizers without pause until <see cref="Stop"/>.</summary>
internal sealed class ForcedCollections
{
    private readonly Thread thread;
    private volatile bool stopping;
    private long count;

    public ForcedCollections()
    {
        thread = new Thread(() =>
        {
            while (!stopping)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Interlocked.Increment(ref count);
            }
        }) { IsBackground = true, Name = "forced-collections" };
        thread.Start();
    }

    /// <summary>Stops the thread and returns how many collections it forced.</summary>
    public long Stop()
    {
        stopping = true;
        thread.Join();
        return Interlocked.Read(ref count);
    }
}
