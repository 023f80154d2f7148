using NvDinoPipeline.Testing;
using Xunit.Abstractions;

namespace NvDinoPipeline.Deploy.Tests.Faults;

/// <summary>
/// The short version of the fault campaign (benchmarks/FaultCampaign runs the whole one): a few pipelines on the
/// multi-process deployment while the orchestrator and a worker are killed mid-job and the broker, the database and
/// the object store go away and come back. Every pipeline completes, nothing runs twice, nothing is corrupt.
/// </summary>
public sealed class FaultCampaignTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory _folder = new("nvdino-faults");

    public void Dispose() => _folder.Dispose();

    /// <summary>Each fault as injected, and every problem the campaign found, for the test's output.</summary>
    private void Print(FaultCampaignReport report)
    {
        foreach (var fault in report.Faults)
        {
            output.WriteLine($"{fault.Kind}: {fault.Detail}; mid-job {fault.MidJob}, {fault.PipelinesTouched} pipelines touched, stood still {fault.StallSeconds:F1} s after");
        }
        foreach (var problem in report.Failed.Concat(report.Unfinished).Concat(report.StagesCompletedTwice).Concat(report.CorruptArtifacts))
        {
            output.WriteLine(problem);
        }
    }

    [Fact]
    public async Task Pipelines_survive_killed_processes_and_a_restarted_broker_database_and_store_completing_once_and_intact()
    {
        var campaign = new FaultCampaign(new FaultCampaignOptions
        {
            Folder = _folder.Path,
            PortBase = 17800,
            Pipelines = 3,
            PipelineInterval = TimeSpan.FromSeconds(4),
            Faults = [FaultKind.KillTraining, FaultKind.KillOrchestrator, FaultKind.RestartRabbitMq, FaultKind.RestartPostgres, FaultKind.StopS3],
            FaultSpacing = TimeSpan.FromSeconds(3),
            S3Outage = TimeSpan.FromSeconds(10),
            Deadline = TimeSpan.FromMinutes(12),
            Seed = 7,
            Log = output.WriteLine,
        });

        var report = await campaign.RunAsync();

        Print(report);
        Assert.Equal(5, report.Faults.Count);
        Assert.Empty(report.Unfinished);
        Assert.Empty(report.Failed);
        Assert.Equal(3, report.Completed);
        Assert.Empty(report.StagesCompletedTwice);
        Assert.True(report.ArtifactsChecked > 3 * 7, $"only {report.ArtifactsChecked} artifacts carried a sha256");
        Assert.Empty(report.CorruptArtifacts);
        Assert.True(double.IsFinite(report.LongestStallSeconds), "a pipeline touched by a fault never moved again");
    }

    [Fact]
    public async Task An_automl_search_survives_its_trials_training_worker_killed_mid_trial_running_each_trial_once()
    {
        var campaign = new FaultCampaign(new FaultCampaignOptions
        {
            Folder = _folder.Path,
            PortBase = 17850,
            Pipelines = 1,
            SpecOverrides =
            [
                "automl_policy=auto", "automl.automl_algorithm=bayesian", "automl.automl_max_recommendations=3", "automl.max_concurrent_trials=1",
                "automl.automl_hyperparameters=[train.optim.lr]",
            ],
            Faults = [FaultKind.KillTraining, FaultKind.KillTraining],
            FaultSpacing = TimeSpan.FromSeconds(3),
            Deadline = TimeSpan.FromMinutes(8),
            Seed = 11,
            Log = output.WriteLine,
        });

        var report = await campaign.RunAsync();

        Print(report);
        // Both kills hit a training process while a trial ran on it: the trial's lease ran out and it went on elsewhere.
        Assert.Equal(2, report.Faults.Count(f => f.MidJob && f.Detail.Contains("mid-job automl-trial-", StringComparison.Ordinal)));
        Assert.Empty(report.Unfinished);
        Assert.Empty(report.Failed);
        Assert.Equal(1, report.Completed);
        // Each trial (its own step) finished once; so did every other step.
        Assert.Empty(report.StagesCompletedTwice);
        Assert.Empty(report.CorruptArtifacts);
    }
}
