using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Testing;
using static NvDinoPipeline.Orchestrator.Tests.TestPipelineHosts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>The pipeline story on the embedded default: in-memory transport, SQLite state, file artifacts.</summary>
public sealed class PipelineStateMachineTests : IDisposable
{
    private static readonly SpecLoader Specs = SpecLoader.CreateDefault();
    private readonly TempDirectory _folder = new("nvdino-orchestrator");

    public void Dispose() => _folder.Dispose();

    /// <summary>A started embedded host whose training stand-in holds its job until canceled, once that job runs.</summary>
    private async Task<(IHost Host, StartPipeline Start, JobRecord Train)> StartWithTrainingHeldAsync(StandIns standIns)
    {
        standIns.Before[PipelineStage.Training] = (_, cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);
        var host = Build(EmbeddedSettings(_folder.Path), p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        var start = NewStart(Specs.Defaults.ToJson());
        await StartPipelineAsync(host, start);
        var (_, running) = await WaitForAsync(host, start.PipelineId, (_, jobs) => jobs.Any(j => j.Step == "train" && j.Status == JobStatus.Running));
        return (host, start, running.Job("train"));
    }

    [Fact]
    public void Plans_distillation_between_training_and_export_only_when_asked()
    {
        var plain = PipelineStateMachine.PlanFor(hasTestData: true, distill: false).Select(s => s.Name);
        var distilled = PipelineStateMachine.PlanFor(hasTestData: false, distill: true);
        Assert.Equal(["stage-train", "stage-test", "train", "export", "engine", "inference"], plain);
        Assert.Equal(["stage-train", "train", "distill", "export", "engine"], distilled.Select(s => s.Name));
        Assert.Equal(["distill"], distilled.Single(s => s.Name == "export").DependsOn);
    }

    [Fact]
    public void Plans_evaluation_after_inference_only_with_test_images_and_when_asked()
    {
        var evaluated = PipelineStateMachine.PlanFor(hasTestData: true, distill: false, evaluate: true);
        Assert.Equal(["stage-train", "stage-test", "train", "export", "engine", "inference", "evaluate"], evaluated.Select(s => s.Name));
        Assert.Equal(["inference", "stage-train"], evaluated.Single(s => s.Name == "evaluate").DependsOn);
        Assert.Equal(PipelineStage.Evaluation, evaluated.Single(s => s.Name == "evaluate").Stage);
        Assert.DoesNotContain(PipelineStateMachine.PlanFor(hasTestData: false, distill: false, evaluate: true), s => s.Name == "evaluate");
        Assert.DoesNotContain(PipelineStateMachine.PlanFor(hasTestData: true, distill: false, evaluate: false), s => s.Name == "evaluate");
    }

    [Fact]
    public async Task Runs_every_stage_once_in_order_and_completes_the_pipeline()
    {
        var standIns = new StandIns();
        using var host = Build(LiveWorkerSettings(EmbeddedSettings(_folder.Path)), p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        var start = NewStart(Specs.Defaults.ToJson());
        await StartPipelineAsync(host, start);

        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Done);

        Assert.Equal(7, jobs.Count);
        Assert.All(jobs, job => Assert.Equal(JobStatus.Done, job.Status));
        Assert.All(new[] { "staging-Train", "staging-Test", "training", "export", "engine", "inference", "evaluation" }, key => Assert.Equal(1, standIns.RunsOf(key)));
        Assert.Equal(jobs.Job("stage-train").Id, jobs.Job("train").ParentJobId);
        Assert.Equal(jobs.Job("train").Id, jobs.Job("export").ParentJobId);
        Assert.Equal(jobs.Job("export").Id, jobs.Job("engine").ParentJobId);
        Assert.Equal(jobs.Job("engine").Id, jobs.Job("inference").ParentJobId);
        Assert.Equal(jobs.Job("engine").Id, jobs.Job("evaluate").ParentJobId);
        Assert.True(jobs.Job("evaluate").StartedAt >= jobs.Job("inference").CompletedAt);
        Assert.True(jobs.Job("train").StartedAt >= jobs.Job("stage-train").CompletedAt);
        Assert.Contains(start.PipelineId.ToString(), jobs.Job("export").Command);
        Assert.Null(pipeline.ErrorReason);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_failed_stage_fails_the_pipeline_with_its_reason_and_resume_reruns_only_what_did_not_finish()
    {
        var standIns = new StandIns();
        var failures = 0;
        standIns.Before[PipelineStage.Export] = (_, _) => Interlocked.Increment(ref failures) == 1
            ? throw new Hosting.Workers.StageInputException("checkpoint 'last.ckpt' is truncated at byte 1024")
            : Task.CompletedTask;
        using var host = Build(EmbeddedSettings(_folder.Path), p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        var start = NewStart(Specs.Defaults.ToJson());
        await StartPipelineAsync(host, start);

        var (failed, _) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Error);
        Assert.Equal(PipelineStage.Export, failed.FailedStage);
        Assert.Equal("checkpoint 'last.ckpt' is truncated at byte 1024", failed.ErrorReason);

        await SendAsync(host, new ResumePipeline { PipelineId = start.PipelineId });
        var (_, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Done);

        Assert.Equal(1, standIns.RunsOf("training"));
        Assert.Equal(1, standIns.RunsOf("staging-Train"));
        Assert.Equal(2, standIns.RunsOf("export"));
        Assert.Equal(JobStatus.Error, jobs.Job("export", 1).Status);
        Assert.Equal(JobStatus.Done, jobs.Job("export", 2).Status);
        Assert.Equal(jobs.Job("train").Id, jobs.Job("export", 2).ParentJobId);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_completion_of_another_stages_type_fails_its_job_and_the_pipeline_naming_what_arrived()
    {
        var (held, start, train) = await StartWithTrainingHeldAsync(new StandIns());
        using var host = held;

        // A worker that answers a training job with a staging result: export could never read it as a training output.
        await SendAsync(host, new DatasetStaged
        {
            PipelineId = start.PipelineId, JobId = train.Id, Role = DatasetRole.Train, ManifestUri = new Uri("file:///tmp/manifest.jsonl"),
            StatisticsUri = new Uri("file:///tmp/statistics.json"), DatasetUri = new Uri("file:///tmp/dataset/"), ImageCount = 1, SkippedCount = 0, DuplicateCount = 0,
        });
        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Error, TimeSpan.FromSeconds(20));

        Assert.Equal(PipelineStage.Training, pipeline.FailedStage);
        Assert.Contains("DatasetStaged", pipeline.ErrorReason);
        Assert.Contains("TrainingCompleted", pipeline.ErrorReason);
        Assert.Equal(JobStatus.Error, jobs.Job("train").Status);
        Assert.Equal(pipeline.ErrorReason, jobs.Job("train").ErrorReason);
        Assert.DoesNotContain(jobs, j => j.Step == "export");
        await host.StopAsync();
    }

    [Theory]
    [InlineData("Spec")]
    [InlineData("Plan")]
    public async Task A_pipeline_the_orchestrator_cannot_advance_fails_with_the_reason_instead_of_staying_running(string column)
    {
        var standIns = new StandIns();
        var staging = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        standIns.Before[PipelineStage.Staging] = (_, cancellationToken) => staging.Task.WaitAsync(cancellationToken);
        var settings = EmbeddedSettings(_folder.Path);
        using var host = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        var start = NewStart(Specs.Defaults.ToJson());
        await StartPipelineAsync(host, start);
        await WaitForAsync(host, start.PipelineId, (_, jobs) => jobs.Count(j => j.Status == JobStatus.Running) == 2);

        // A stored row the orchestrator can no longer read (edited by hand, or written by a version that meant otherwise):
        // applying the staging's completion throws on every delivery.
        await UpdatePipelineAsync(settings, start.PipelineId, column, "{ not json");
        staging.SetResult();
        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Error, TimeSpan.FromSeconds(30));

        Assert.StartsWith("The orchestrator could not apply DatasetStaged to the pipeline: Json", pipeline.ErrorReason);
        Assert.NotNull(pipeline.CompletedAt);
        Assert.DoesNotContain(jobs, j => j.Step == "train");

        // Status and list (the API's, the CLI's) still show it, with its reason, and every other pipeline with it.
        var reader = ActivatorUtilities.CreateInstance<Orchestrator.Api.PipelineReader>(host.Services);
        var view = await reader.ReadAsync(start.PipelineId, CancellationToken.None);
        Assert.Equal((JobStatus.Error, pipeline.ErrorReason), (view!.Status, view.Error));
        Assert.Contains(await reader.ListAsync(10, CancellationToken.None), v => v.Id == start.PipelineId && v.Status == JobStatus.Error);
        await host.StopAsync();
    }

    [Theory]
    [InlineData(JobStatus.Done)]
    [InlineData(JobStatus.Error)]
    public async Task A_job_a_worker_ended_without_the_orchestrator_hearing_of_it_is_applied_from_the_state_database(JobStatus end)
    {
        var standIns = new StandIns();
        standIns.Before[PipelineStage.Training] = (_, cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);
        var settings = EmbeddedSettings(_folder.Path);
        settings["Orchestrator:UnhandledEndAfter"] = "00:00:02";
        using var host = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        var start = NewStart(Specs.Defaults.ToJson());
        await StartPipelineAsync(host, start);
        // The test images staged too: no other completion is left to come and move the pipeline on.
        var (_, running) = await WaitForAsync(host, start.PipelineId, (_, jobs) =>
            jobs.Any(j => j.Step == "train" && j.Status == JobStatus.Running) && jobs.Any(j => j.Step == "stage-test" && j.HandledAt != null));
        var train = running.Job("train");

        // What the worker's transaction wrote, while the completion it also saved never reached the orchestrator (it
        // went to the error queue while the database was away longer than the orchestrator's retries, say).
        var output = new Uri($"file:///tmp/nvdino-unheard/{train.Id}/");
        var completed = new TrainingCompleted
        {
            PipelineId = start.PipelineId, JobId = train.Id, ParentJobId = train.ParentJobId, CheckpointUri = new(output, "checkpoints/epoch_001.ckpt"),
            TeacherBackboneUri = new(output, "teacher_backbone.safetensors"), StudentBackboneUri = new(output, "student_backbone.safetensors"), Epochs = 1,
        };
        await EndJobInDatabaseAsync(settings, train.Id, end, end == JobStatus.Done ? completed : null, "disk full while writing epoch_002.ckpt");
        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status != JobStatus.Running, TimeSpan.FromSeconds(30));

        if (end == JobStatus.Done)
        {
            Assert.Equal(JobStatus.Done, pipeline.Status);
            Assert.Equal(train.Id, jobs.Job("export").ParentJobId);
            Assert.Equal(1, standIns.RunsOf("export"));
        }
        else
        {
            Assert.Equal(JobStatus.Error, pipeline.Status);
            Assert.Equal(PipelineStage.Training, pipeline.FailedStage);
            Assert.Equal("disk full while writing epoch_002.ckpt", pipeline.ErrorReason);
            Assert.DoesNotContain(jobs, j => j.Step == "export");
        }
        Assert.NotNull(jobs.Job("train").HandledAt);
        await host.StopAsync();
    }

    [Fact]
    public async Task Cancel_stops_the_running_stage_within_seconds_and_marks_the_pipeline_canceled()
    {
        var (held, start, _) = await StartWithTrainingHeldAsync(new StandIns());
        using var host = held;

        await SendAsync(host, new CancelPipeline { PipelineId = start.PipelineId, Reason = "changed my mind" });
        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId,
            (p, js) => p.Status == JobStatus.Canceled && js.Job("train").Status == JobStatus.Canceled, TimeSpan.FromSeconds(10));

        Assert.Equal("changed my mind", pipeline.ErrorReason);
        Assert.DoesNotContain(jobs, j => j.Step == "export");
        await host.StopAsync();
    }

    [Fact]
    public async Task A_pipeline_with_distillation_exports_the_distilled_student()
    {
        var standIns = new StandIns();
        using var host = Build(EmbeddedSettings(_folder.Path), p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        var start = NewStart(Specs.Resolve(Array.Empty<string>(), ["pipeline.stages.distill=true"]).ToJson(), withTest: false);
        await StartPipelineAsync(host, start);

        var (_, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Done);

        Assert.Equal(jobs.Job("distill").Id, jobs.Job("export").ParentJobId);
        Assert.Contains("student_ema.safetensors", jobs.Job("export").Command);
        Assert.DoesNotContain(jobs, j => j.Stage == PipelineStage.Inference);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_start_request_with_an_invalid_spec_fails_the_pipeline_without_running_any_stage()
    {
        var standIns = new StandIns();
        using var host = Build(EmbeddedSettings(_folder.Path), p => p.AddOrchestrator().AddStandInWorkers(standIns));
        await host.StartAsync();
        var spec = System.Text.RegularExpressions.Regex.Replace(Specs.Defaults.ToJson(), "\"num_epochs\":[0-9]+", "\"num_epochs\":0");
        Assert.NotEqual(Specs.Defaults.ToJson(), spec);
        var start = NewStart(spec);
        await StartPipelineAsync(host, start);

        var (pipeline, jobs) = await WaitForAsync(host, start.PipelineId, (p, _) => p.Status == JobStatus.Error);

        Assert.Contains("train.num_epochs", pipeline.ErrorReason);
        Assert.Empty(jobs);
        Assert.Empty(standIns.Runs);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_restarted_embedded_host_finishes_the_pipeline_its_predecessor_left_running()
    {
        var settings = EmbeddedSettings(_folder.Path);
        var first = new StandIns();
        first.Before[PipelineStage.Training] = (_, cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);
        var start = NewStart(Specs.Defaults.ToJson());
        using (var host = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(first)))
        {
            await host.StartAsync();
            await StartPipelineAsync(host, start);
            await WaitForAsync(host, start.PipelineId, (_, jobs) => jobs.Any(j => j.Step == "train" && j.Status == JobStatus.Running));
            await host.StopAsync();
        }

        var second = new StandIns();
        using var restarted = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(second));
        await restarted.StartAsync();
        var (_, jobs) = await WaitForAsync(restarted, start.PipelineId, (p, _) => p.Status == JobStatus.Done);

        Assert.Equal(0, second.RunsOf("staging-Train"));
        Assert.Equal(1, second.RunsOf("training"));
        Assert.Single(jobs, j => j.Step == "train");
        await restarted.StopAsync();
    }

    [Fact]
    public async Task A_job_a_predecessor_hands_back_late_is_continued_by_the_next_host_with_the_command_saved_with_the_hand_back()
    {
        var settings = EmbeddedSettings(_folder.Path);
        var first = new StandIns();
        first.Before[PipelineStage.Training] = (_, cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);
        var start = NewStart(Specs.Defaults.ToJson());
        using (var host = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(first)))
        {
            await host.StartAsync();
            await StartPipelineAsync(host, start);
            await WaitForAsync(host, start.PipelineId, (_, jobs) => jobs.Any(j => j.Step == "train" && j.Status == JobStatus.Running));
            await host.StopAsync();
        }
        // The next host starts while the training job is still claimed by a predecessor that has not finished stopping ...
        var (_, before) = await ReadAsync(settings, start.PipelineId);
        var train = before.Job("train");
        const string predecessor = "predecessor/1/0000";
        await UpdateJobAsync(settings, train.Id, JobStatus.Running, leaseExpiresAt: DateTime.UtcNow.AddHours(1), workerId: predecessor);

        var second = new StandIns();
        using var restarted = Build(settings, p => p.AddOrchestrator().AddStandInWorkers(second));
        await restarted.StartAsync();
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(0, second.RunsOf("training"));
        // ... which then hands the job back, saving its command for its own relay, and dies before delivering it.
        var command = OutboxMessage.Send(StageCatalog.For(PipelineStage.Training).Queue, train.CommandType, train.Command, start.PipelineId, DateTime.UtcNow);
        command.LockedBy = predecessor;
        command.LockedUntil = DateTime.UtcNow.AddSeconds(2);
        Assert.True(await restarted.Services.GetRequiredService<JobStore>().ReleaseAsync(train.Id, predecessor, [command], CancellationToken.None));

        await WaitForAsync(restarted, start.PipelineId, (p, _) => p.Status == JobStatus.Done, TimeSpan.FromSeconds(30));
        Assert.Equal(1, second.RunsOf("training"));
        await restarted.StopAsync();
    }
}
