using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Automl;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using static NvDinoPipeline.State.PipelineStep;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>
/// The <c>train</c> step as an AutoML search, driven by hand one message at a time: which trials go to the training
/// queue, with which values, when weak ones stop and promising ones resume, and what continues the pipeline.
/// </summary>
public sealed class AutomlSearchTests
{
    private static readonly SpecLoader Specs = SpecLoader.CreateDefault();
    private static readonly ArtifactStore Store = new(Options.Create(new ArtifactStoreOptions { Root = "file:///tmp/nvdino-automl/" }));
    private readonly PipelineStateMachine _machine = new(Store, TimeProvider.System, new AutomlSearches(Store, Specs, TimeProvider.System));

    [Fact]
    public void With_automl_off_the_train_step_is_one_training_job()
    {
        var state = Start("{}");
        var sent = Complete(state, StageTrain, out _);

        var train = Assert.Single(sent.Dispatch);
        Assert.Equal(Train, train.Step);
        Assert.Null(Command(train).Trial);
        Assert.DoesNotContain(state.Jobs, j => IsTrialStep(j.Step));
    }

    [Fact]
    public void Bayesian_trials_run_two_at_a_time_within_bounds_keep_the_requests_keys_and_the_best_continues_to_export()
    {
        var state = Start("""
            automl_policy: auto
            automl: {automl_algorithm: bayesian, automl_max_recommendations: 5, max_concurrent_trials: 2}
            train: {optim: {lr: 0.0003}}
            """);
        var first = Complete(state, StageTrain, out _).Dispatch;

        var search = state.Latest(Train)!;
        Assert.True(AutomlSearches.IsSearch(search));
        Assert.Equal(JobStatus.Running, search.Status);
        Assert.Equal(2, first.Count);
        Assert.All(first, trial => Assert.True(IsTrialStep(trial.Step)));
        var space = SearchSpace.TrainingDefaults.Without(["train.optim.lr"]);
        var scores = new Dictionary<int, double> { [1] = 0.30, [2] = 0.55, [3] = 0.40, [4] = 0.80, [5] = 0.20 };
        var sentTrials = new List<JobRecord>(first);
        var pending = new Queue<JobRecord>(first);
        while (pending.TryDequeue(out var trial))
        {
            var command = Command(trial);
            Assert.Equal(search.Id, trial.ParentJobId);
            Assert.Equal(search.Id, command.Trial!.SearchJobId);
            // The request's learning rate is kept, never searched; every searched value lies within its bounds.
            Assert.DoesNotContain("train.optim.lr", command.Trial.Parameters.Keys);
            Assert.Equal(0.0003, ResolvedSpec.FromJson(command.Spec).Get<double>("train.optim.lr"));
            Assert.Equal("off", ResolvedSpec.FromJson(command.Spec).Get<string>("automl_policy"));
            Assert.Equal(space.Parameters.Select(p => p.Key).Order(), command.Trial.Parameters.Keys.Order());
            foreach (var parameter in space.Parameters)
            {
                var value = double.Parse(command.Trial.Parameters[parameter.Key], CultureInfo.InvariantCulture);
                Assert.InRange(value, parameter.Min, parameter.Max);
                Assert.Equal(value, ResolvedSpec.FromJson(command.Spec).Get<double>(parameter.Key), 12);
            }
            Assert.True(state.Jobs.Count(j => IsTrialStep(j.Step) && j.Status is JobStatus.Pending or JobStatus.Running) <= 2);
            var completed = CompleteTrial(state, trial, scores[command.Trial.Number]);
            // automl_delete_intermediate_ckpt is false by default: every trial keeps its checkpoints.
            Assert.Empty(completed.PruneCheckpoints);
            var next = completed.Dispatch;
            sentTrials.AddRange(next);
            foreach (var job in next.Where(j => IsTrialStep(j.Step)))
                pending.Enqueue(job);
        }

        Assert.Equal(5, sentTrials.Count(j => IsTrialStep(j.Step)));
        Assert.Equal(JobStatus.Done, search.Status);
        var best = sentTrials.Single(j => IsTrialStep(j.Step) && Command(j).Trial!.Number == 4);
        var export = state.Latest(Export)!;
        var exportCommand = JsonSerializer.Deserialize<ExportModel>(export.Command)!;
        Assert.Equal(best.Id, exportCommand.ParentJobId);
        Assert.Equal(Store.JobFolder(state.Pipeline.Id, best.Id), exportCommand.CheckpointsUri);
        Assert.Contains("trial 4 won", search.ProgressMessage);
        AssertEachStepRunsOncePerAttempt(state);
    }

    [Fact]
    public void Hyperband_stops_the_weak_trials_of_a_rung_and_resumes_the_best_from_its_checkpoint_with_more_epochs()
    {
        // automl_r 3, automl_nu 3: bracket 0 starts 3 trials at 1 unit and promotes 1 to 3 units; bracket 1 starts 2 at 3 units.
        var state = Start("""
            automl_policy: auto
            automl: {automl_algorithm: hyperband, automl_r: 3, automl_nu: 3, epoch_multiplier: 2, automl_delete_intermediate_ckpt: true}
            """);
        var rung0 = Complete(state, StageTrain, out _).Dispatch;

        Assert.Equal(3, rung0.Count);
        Assert.All(rung0, t => Assert.Equal(2, ResolvedSpec.FromJson(Command(t).Spec).Get<int>("train.num_epochs")));
        Assert.All(rung0, t => Assert.Empty(Command(t).PreviousAttempts));
        CompleteTrial(state, rung0[0], 0.2);
        Assert.Empty(CompleteTrial(state, rung0[1], 0.9).Dispatch);
        var promoted = Assert.Single(CompleteTrial(state, rung0[2], 0.5).Dispatch);

        var promotedCommand = Command(promoted);
        Assert.Equal(Command(rung0[1]).Trial!.Number, promotedCommand.Trial!.Number);
        Assert.Equal(1, promotedCommand.Trial.Rung);
        Assert.Equal(Command(rung0[1]).Trial!.Parameters, promotedCommand.Trial.Parameters);
        Assert.Equal(6, ResolvedSpec.FromJson(promotedCommand.Spec).Get<int>("train.num_epochs"));
        Assert.Equal([Store.JobFolder(state.Pipeline.Id, rung0[1].Id)], promotedCommand.PreviousAttempts);

        var bracket1 = CompleteTrial(state, promoted, 0.7).Dispatch;
        Assert.Equal(2, bracket1.Count);
        Assert.All(bracket1, t => Assert.Equal(6, ResolvedSpec.FromJson(Command(t).Spec).Get<int>("train.num_epochs")));
        Assert.Empty(CompleteTrial(state, bracket1[0], 0.6).PruneCheckpoints);
        var end = CompleteTrial(state, bracket1[1], 0.65);
        // automl_delete_intermediate_ckpt: every trial job's checkpoints go but the winner's last (its rung 0's too).
        Assert.Equal(state.Jobs.Where(j => IsTrialStep(j.Step) && j.Id != promoted.Id).Select(j => Store.JobFolder(state.Pipeline.Id, j.Id).AbsoluteUri).Order(),
            end.PruneCheckpoints.Select(u => u.AbsoluteUri).Order());
        Assert.Contains(Store.JobFolder(state.Pipeline.Id, rung0[1].Id), end.PruneCheckpoints);

        var search = state.Latest(Train)!;
        Assert.Equal(JobStatus.Done, search.Status);
        // Six trial jobs in all: the two weak trials of the first rung were never continued.
        Assert.Equal(6, state.Jobs.Count(j => IsTrialStep(j.Step)));
        Assert.Equal(promoted.Id, JsonSerializer.Deserialize<ExportModel>(state.Latest(Export)!.Command)!.ParentJobId);
        AssertEachStepRunsOncePerAttempt(state);
    }

    [Fact]
    public void A_single_action_after_a_trial_that_did_not_win_continues_from_that_trial_as_its_train_step()
    {
        var state = Start("""
            automl_policy: auto
            automl: {automl_algorithm: bayesian, automl_max_recommendations: 2, max_concurrent_trials: 2}
            """);
        var trials = Complete(state, StageTrain, out _).Dispatch;
        CompleteTrial(state, trials[0], 0.4);
        CompleteTrial(state, trials[1], 0.8);
        Assert.Equal(trials[1].Id, JsonSerializer.Deserialize<ExportModel>(state.Latest(Export)!.Command)!.ParentJobId);

        // The user exports the trial that lost: its own step is in no plan, so it is reused as the action's train step.
        var plan = SingleActions.Plan("export", state, trials[0], "{}", null, Specs);
        var start = TestPipelineHosts.NewStart("{}") with { Action = "export", ParentJobId = trials[0].Id };
        var (action, started) = _machine.StartAction(start, plan);

        Assert.Contains(plan.Steps, s => s.Name == Train && s.Reuses == trials[0].Id);
        var export = JsonSerializer.Deserialize<ExportModel>(Assert.Single(started.Dispatch).Command)!;
        Assert.Equal(trials[0].Id, export.ParentJobId);
        Assert.Equal(Store.JobFolder(state.Pipeline.Id, trials[0].Id), export.CheckpointsUri);
        Assert.Equal(JobStatus.Running, action.Pipeline.Status);
    }

    [Fact]
    public void A_failed_trial_scores_worst_and_the_search_fails_only_when_no_trial_scored()
    {
        var state = Start("""
            automl_policy: auto
            automl: {automl_max_recommendations: 2, max_concurrent_trials: 1}
            """);
        var first = Assert.Single(Complete(state, StageTrain, out _).Dispatch);

        var second = Assert.Single(Fail(state, first, "loss diverged to NaN at step 3").Dispatch);
        Assert.Equal(JobStatus.Running, state.Pipeline.Status);
        var ended = Fail(state, second, "loss diverged to NaN at step 5");

        Assert.Equal(JobStatus.Error, state.Pipeline.Status);
        Assert.Equal(PipelineStage.Training, state.Pipeline.FailedStage);
        Assert.Contains("no trial of the search produced a score; trial 1 failed: loss diverged to NaN at step 3", state.Pipeline.ErrorReason);
        Assert.IsType<PipelineFailed>(Assert.Single(ended.Publish));
    }

    [Fact]
    public void Cancel_and_resume_keep_the_finished_trials_and_run_the_canceled_ones_again_from_their_checkpoints()
    {
        var state = Start("""
            automl_policy: auto
            automl: {automl_max_recommendations: 3, max_concurrent_trials: 2}
            """);
        var first = Complete(state, StageTrain, out _).Dispatch;
        var third = Assert.Single(CompleteTrial(state, first[0], 0.4).Dispatch);

        _machine.Cancel(state, "operator");
        Assert.All(state.Jobs.Where(j => IsTrialStep(j.Step) && j.Id != first[0].Id), j => Assert.Equal(JobStatus.Canceled, j.Status));
        var resumed = _machine.Resume(state).Dispatch.Where(j => IsTrialStep(j.Step)).ToList();

        var search = state.Latest(Train)!;
        Assert.Equal(2, search.Attempt);
        Assert.Equal(2, resumed.Count);
        Assert.All(resumed, j => Assert.Equal(search.Id, j.ParentJobId));
        Assert.Equal([2, 3], resumed.Select(j => Command(j).Trial!.Number).Order());
        var again = resumed.Single(j => Command(j).Trial!.Number == 2);
        Assert.Equal(2, again.Attempt);
        Assert.Equal(Command(first[1]).Trial!.Parameters, Command(again).Trial!.Parameters);
        Assert.Equal([Store.JobFolder(state.Pipeline.Id, first[1].Id)], Command(again).PreviousAttempts);

        foreach (var job in resumed)
            CompleteTrial(state, job, Command(job).Trial!.Number);
        Assert.Equal(JobStatus.Done, search.Status);
        Assert.Equal(3, Command(state.Jobs.Single(j => j.Id == JsonSerializer.Deserialize<ExportModel>(state.Latest(Export)!.Command)!.ParentJobId)).Trial!.Number);
        AssertEachStepRunsOncePerAttempt(state);
    }

    [Fact]
    public void A_request_that_fixes_every_default_key_is_refused_and_named_keys_are_searched_whatever_it_sets()
    {
        var allFixed = Specs.ResolveRequest("""
            automl_policy: auto
            model: {backbone: {drop_path_rate: 0.1}}
            train: {optim: {lr: 0.001, weight_decay_end: 0.3, layerwise_decay: 0.9}, teacher: {teacher_temp: 0.05}}
            """, "spec");
        var error = Assert.Throws<ArgumentException>(() => AutomlSettings.SearchedKeysOverride(allFixed, Specs.KeysChangedFromTemplates(allFixed)));
        Assert.Contains("automl.automl_hyperparameters", error.Message);

        var named = Specs.ResolveRequest("""{"automl_policy": "auto", "automl": {"automl_hyperparameters": ["train.optim.lr"]}, "train": {"optim": {"lr": 0.001}}}""", "spec");
        Assert.Equal("automl.automl_hyperparameters=[train.optim.lr]", AutomlSettings.SearchedKeysOverride(named, Specs.KeysChangedFromTemplates(named)));
        Assert.Throws<ArgumentException>(() => AutomlSettings.SearchedKeysOverride(
            Specs.ResolveRequest("""{"automl_policy": "auto", "automl": {"automl_hyperparameters": ["train.num_epochs"]}}""", "spec"), new HashSet<string>()));
    }

    private PipelineState Start(string request)
    {
        var spec = Specs.ResolveRequest(request, "spec");
        if (AutomlSettings.SearchedKeysOverride(spec, Specs.KeysChangedFromTemplates(spec)) is { } searched)
            spec = Specs.Apply(spec, [searched]);
        var (state, _) = _machine.Start(TestPipelineHosts.NewStart(spec.ToJson()), spec);
        return state;
    }

    /// <summary>What the state database's unique index on (pipeline, step, attempt) holds the jobs to.</summary>
    private static void AssertEachStepRunsOncePerAttempt(PipelineState state) =>
        Assert.Equal(state.Jobs.Count, state.Jobs.Select(j => (j.Step, j.Attempt)).Distinct().Count());

    private static TrainModel Command(JobRecord job) => JsonSerializer.Deserialize<TrainModel>(job.Command)!;

    private Transition Complete(PipelineState state, string step, out JobRecord job)
    {
        job = state.Latest(step)!;
        var output = Store.JobFolder(state.Pipeline.Id, job.Id);
        return _machine.OnStageCompleted(state, new DatasetStaged
        {
            PipelineId = state.Pipeline.Id, JobId = job.Id, Role = DatasetRole.Train, ManifestUri = new(output, "manifest.jsonl"),
            StatisticsUri = new(output, "statistics.json"), DatasetUri = new(output, "shards/"), ImageCount = 100, SkippedCount = 0, DuplicateCount = 0,
        });
    }

    private Transition CompleteTrial(PipelineState state, JobRecord trial, double score)
    {
        var output = Store.JobFolder(state.Pipeline.Id, trial.Id);
        return _machine.OnStageCompleted(state, new TrainingCompleted
        {
            PipelineId = state.Pipeline.Id, JobId = trial.Id, ParentJobId = trial.ParentJobId, CheckpointUri = new(output, "checkpoints/epoch_001.ckpt"),
            TeacherBackboneUri = new(output, "teacher_backbone.safetensors"), StudentBackboneUri = new(output, "student_backbone.safetensors"), Epochs = 1,
            Metrics = new Dictionary<string, double> { [AutomlTrial.ScoreMetric] = score },
        });
    }

    private Transition Fail(PipelineState state, JobRecord trial, string reason) =>
        _machine.OnStageFailed(state, new StageFailed
        {
            PipelineId = state.Pipeline.Id, JobId = trial.Id, Stage = PipelineStage.Training, Reason = reason, FailedAt = DateTimeOffset.UtcNow,
        });
}
