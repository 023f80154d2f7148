using System.Diagnostics;
using System.Globalization;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Benchmarks.Training;

/// <summary>Command-line options of the form <c>--name value</c>.</summary>
internal sealed class BenchmarkArgs(string[] args)
{
    public bool Has(string name) => args.Contains(name);

    public string? Get(string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    /// <summary>The value after every occurrence of <paramref name="name"/>.</summary>
    public IReadOnlyList<string> All(string name) =>
        [.. args.Select((arg, i) => (arg, i)).Where(p => p.arg == name && p.i + 1 < args.Length).Select(p => args[p.i + 1])];

    public int Int(string name, int fallback) => Get(name) is { } value ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

    public double Double(string name, double fallback) => Get(name) is { } value ? double.Parse(value, CultureInfo.InvariantCulture) : fallback;
}

/// <summary>Prints every <c>every</c>-th step's losses and each epoch's means.</summary>
internal sealed class ConsoleObserver(string name, long totalSteps, int every) : ITrainingObserver
{
    private readonly Stopwatch clock = Stopwatch.StartNew();

    public void OnStep(TrainingStepResult step, double imagesPerSecond)
    {
        if ((step.Step + 1) % every != 0)
            return;
        Console.WriteLine($"  {name} step {step.Step + 1}/{totalSteps} ({clock.Elapsed.TotalSeconds:F0} s): loss {step[TrainingMetrics.Loss]:F3} " +
                          $"(dino {step[TrainingMetrics.DinoLocalLoss] + step[TrainingMetrics.DinoGlobalLoss]:F3}, ibot {step[TrainingMetrics.IbotLoss]:F3}, koleo {step[TrainingMetrics.KoleoLoss]:F3}), " +
                          (step.Metrics.TryGetValue(TrainingMetrics.TeacherEntropy, out var entropy) ? $"teacher entropy {entropy:F2}, " : "") +
                          $"lr {step[TrainingMetrics.Lr]:G3}, {imagesPerSecond:F0} images/s");
    }

    public Task OnEpochEndAsync(EpochSummary summary, CancellationToken cancellationToken)
    {
        Console.WriteLine($"{name} epoch {summary.Epoch}: mean loss {summary.Metrics[TrainingMetrics.Loss]:F3}, {summary.Metrics[TrainingMetrics.ImagesPerSecond]:F1} images/s, {summary.Metrics[TrainingMetrics.EpochSeconds]:F0} s");
        return Task.CompletedTask;
    }

    public Task OnCheckpointAsync(SavedCheckpoint checkpoint, CancellationToken cancellationToken) => Task.CompletedTask;
}
