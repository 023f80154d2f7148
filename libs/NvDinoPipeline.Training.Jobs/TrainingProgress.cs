using System.Globalization;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Training.Jobs;

/// <summary>
/// The job's progress reports. Steps only record their figures (on the training thread); a pump publishes the
/// latest ones at a fixed interval, so reports keep coming while a long step runs. Epoch ends and checkpoints are
/// published at once. Reports never overlap.
/// </summary>
public sealed class TrainingProgress(StageContext context, long totalSteps, int epochs, long iterationsPerEpoch)
{
    private readonly SemaphoreSlim reporting = new(1, 1);
    private readonly Lock gate = new();
    private TrainingStepResult? lastStep;
    private double imagesPerSecond;
    private long published = -1;

    public void Update(TrainingStepResult step, double stepImagesPerSecond)
    {
        lock (gate)
        {
            lastStep = step;
            // Smoothed over about ten steps: single steps vary with the data loader and the machine's load.
            imagesPerSecond = imagesPerSecond == 0 ? stepImagesPerSecond : 0.9 * imagesPerSecond + 0.1 * stepImagesPerSecond;
        }
    }

    public async Task PumpAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var (step, rate) = Snapshot();
                if (step is null)
                    continue;
                var message = step.Step == published
                    ? $"epoch {step.Epoch + 1}/{epochs}: step {step.Step + 2}/{totalSteps} running"
                    : $"epoch {step.Epoch + 1}/{epochs}, step {step.Step + 1}/{totalSteps}: loss {step[TrainingMetrics.Loss]:F4}, lr {step[TrainingMetrics.Lr]:G3}, {rate:F1} images/s";
                published = step.Step;
                await ReportAsync(new StageProgress(Fraction(step.Step + 1), message, Figures(step, rate)), now: false, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    public Task EpochEndAsync(EpochSummary summary, CancellationToken cancellationToken)
    {
        var metrics = new Dictionary<string, double>(summary.Metrics) { [TrainingMetrics.TotalSteps] = totalSteps };
        var message = string.Create(CultureInfo.InvariantCulture,
            $"epoch {summary.Epoch}/{epochs} done: loss {summary.Metrics.GetValueOrDefault(TrainingMetrics.Loss):F4}, {summary.Metrics.GetValueOrDefault(TrainingMetrics.ImagesPerSecond):F1} images/s");
        return ReportAsync(new StageProgress(Fraction(summary.Epoch * iterationsPerEpoch), message, metrics), now: true, cancellationToken);
    }

    public Task ReportNowAsync(string message, CancellationToken cancellationToken, double? fraction = null, IReadOnlyDictionary<string, double>? metrics = null)
    {
        var (step, rate) = Snapshot();
        return ReportAsync(new StageProgress(fraction ?? (step is null ? null : Fraction(step.Step + 1)), message,
            metrics ?? (step is null ? null : Figures(step, rate))), now: true, cancellationToken);
    }

    private (TrainingStepResult? Step, double Rate) Snapshot()
    {
        lock (gate)
        {
            return (lastStep, imagesPerSecond);
        }
    }

    private double Fraction(long stepsDone) => totalSteps == 0 ? 1.0 : Math.Clamp((double)stepsDone / totalSteps, 0, 1);

    private Dictionary<string, double> Figures(TrainingStepResult step, double rate)
    {
        var figures = new Dictionary<string, double>(step.Metrics)
        {
            [TrainingMetrics.Epoch] = step.Epoch + 1,
            [TrainingMetrics.Step] = step.Step + 1,
            [TrainingMetrics.TotalSteps] = totalSteps,
            [TrainingMetrics.ImagesPerSecond] = rate,
        };
        return figures;
    }

    private async Task ReportAsync(StageProgress progress, bool now, CancellationToken cancellationToken)
    {
        await reporting.WaitAsync(cancellationToken);
        try
        {
            if (now)
                await context.ReportNowAsync(progress, cancellationToken);
            else
                await context.ReportAsync(progress, cancellationToken);
        }
        finally
        {
            reporting.Release();
        }
    }
}
