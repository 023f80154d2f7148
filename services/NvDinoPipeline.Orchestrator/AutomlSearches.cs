using System.Globalization;
using System.Text.Json;
using NvDinoPipeline.Automl;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using static NvDinoPipeline.State.PipelineStep;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// The <c>train</c> step of a pipeline with <c>automl_policy: auto</c>: a search job the orchestrator runs itself (no
/// worker takes it), whose children are trials, each an ordinary training job on the training queue with the trial's
/// values in its spec. The search is decided again from the trial jobs on every change, so what it does next follows
/// from what the state database holds, whoever crashed: Bayesian optimisation proposes a trial whenever fewer than
/// <c>automl.max_concurrent_trials</c> run, each proposal fitted to the scores so far (and kept with its job);
/// Hyperband is replayed from its seed, dispatching a rung's trials together (fresh ones, or promoted ones resumed from
/// their previous rung's checkpoint) and promoting the best when the rung has reported. When the search ends, the
/// search job completes with the best trial's training output, and the pipeline continues from it.
/// A failed trial scores worst and the search goes on; a trial that failed or was canceled under an earlier attempt of
/// the search (a canceled or failed pipeline, resumed) runs again, continuing from its checkpoints.
/// </summary>
public sealed class AutomlSearches(IArtifactStore artifacts, SpecLoader specs, TimeProvider clock)
{
    private readonly IArtifactStore artifacts = artifacts;
    private readonly SpecLoader specs = specs;

    /// <summary>The command type a search job records: it is never sent, and no worker consumes it.</summary>
    public const string SearchCommandType = "NvDinoPipeline.Orchestrator.AutomlSearch";

    public static bool IsSearch(JobRecord job) => job.CommandType == SearchCommandType;

    /// <summary>Whether the pipeline's <c>train</c> step is a search.</summary>
    public static bool Enabled(PipelineRecord pipeline) => AutomlSettings.From(ResolvedSpec.FromJson(pipeline.Spec)).Enabled;

    /// <summary>A trial job's place in its search, read from its command.</summary>
    public static AutomlTrial? TrialOf(JobRecord job) =>
        IsTrialStep(job.Step) ? JsonSerializer.Deserialize<TrainModel>(job.Command)?.Trial : null;

    /// <summary>
    /// The job whose folder holds what <paramref name="job"/> trained: for a finished search, the trial that won
    /// (its completion is that trial's); else the job itself.
    /// </summary>
    public static Guid TrainedJobId(JobRecord job) =>
        IsSearch(job) && job.Completion is { } won ? JsonSerializer.Deserialize<TrainingCompleted>(won)?.JobId ?? job.Id : job.Id;

    /// <summary>A trial's score, when it finished and reported one.</summary>
    public static double? ScoreOf(JobRecord job)
    {
        if (job is not { Status: JobStatus.Done, Completion: { } completion })
            return null;
        var metrics = JsonSerializer.Deserialize<TrainingCompleted>(completion)?.Metrics;
        return metrics is not null && metrics.TryGetValue(AutomlTrial.ScoreMetric, out var score) && double.IsFinite(score) ? score : null;
    }

    /// <summary>A new search job for the <c>train</c> step (Running from the start: the orchestrator is its worker).</summary>
    public JobRecord NewSearch(PipelineState state, PipelineStep step, int attempt, Guid stagedJobId)
    {
        var settings = AutomlSettings.From(ResolvedSpec.FromJson(state.Pipeline.Spec));
        return new JobRecord
        {
            Id = Guid.NewGuid(),
            PipelineId = state.Pipeline.Id,
            ParentJobId = stagedJobId,
            Step = step.Name,
            Stage = step.Stage,
            Attempt = attempt,
            Status = JobStatus.Running,
            Spec = state.Pipeline.Spec,
            CommandType = SearchCommandType,
            Command = JsonSerializer.Serialize(new
            {
                algorithm = settings.Algorithm.ToString().ToLowerInvariant(),
                searched = settings.Space.Parameters.Select(p => p.Key).ToList(),
                metric = settings.Metric.ToString().ToLowerInvariant(),
            }),
            ProgressMessage = $"AutoML: {settings}",
            Progress = 0,
            CreatedAt = Now,
            StartedAt = Now,
            UpdatedAt = Now,
        };
    }

    /// <summary>
    /// Takes the search as far as its trials allow: returns the trial jobs to send (already added to the state), and
    /// completes or fails <paramref name="search"/> when it has ended; then, with
    /// <c>automl.automl_delete_intermediate_ckpt</c>, also the folders of the trial jobs whose checkpoints go (every one
    /// but the winner's last).
    /// </summary>
    public (IReadOnlyList<JobRecord> Dispatch, IReadOnlyList<Uri> Prune) Advance(PipelineState state, JobRecord search)
    {
        if (search.Status != JobStatus.Running)
            return ([], []);
        var settings = AutomlSettings.From(ResolvedSpec.FromJson(state.Pipeline.Spec));
        var run = new SearchRun(this, state, search, settings);
        if (settings.Algorithm == AutomlAlgorithm.Hyperband)
            run.Hyperband();
        else
            run.Bayesian();
        return (run.Dispatch, run.Prune);
    }

    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    private const string WarmupKey = "train.optim.warmup_epochs";

    private sealed class SearchRun(AutomlSearches owner, PipelineState state, JobRecord search, AutomlSettings settings)
    {
        private readonly SearchSpace space = settings.Space;
        // This pipeline's own: a trial of another pipeline's search, reused by a single action, is no trial of this one.
        private readonly List<(JobRecord Job, AutomlTrial Trial)> trials = state.Jobs.Where(job => job.PipelineId == state.Pipeline.Id)
            .Select(job => (Job: job, Trial: TrialOf(job)!))
            .Where(t => t.Trial is not null)
            .ToList();

        public List<JobRecord> Dispatch { get; } = [];

        public List<Uri> Prune { get; } = [];

        public void Bayesian()
        {
            var latest = trials.GroupBy(t => t.Trial.Number).Select(g => g.MaxBy(t => t.Job.Attempt)).OrderBy(t => t.Trial.Number).ToList();
            var running = 0;
            var finished = new List<(JobRecord Job, AutomlTrial Trial, double Score)>();
            foreach (var (job, trial) in latest)
            {
                switch (Outcome(job))
                {
                    case TrialState.Running:
                        running++;
                        break;
                    case TrialState.Again:
                        Start(trial, settings.Epochs, job.Attempt + 1, PreviousFolders(trial.Number, trial.Rung));
                        running++;
                        break;
                    default:
                        finished.Add((job, trial, ScoreOf(job) ?? double.NaN));
                        break;
                }
            }
            var next = latest.Count + 1;
            while (next <= settings.MaxRecommendations && running < settings.MaxConcurrentTrials)
            {
                // Each proposal draws from its own seed, so that deciding again from the same trials proposes the same.
                var bayesian = new BayesianSearch(space, new Random(unchecked(settings.Seed * 7919 + next)));
                foreach (var (_, trial, score) in finished)
                    bayesian.Observe(ConfigurationOf(trial), score);
                Start(NewTrial(next, 0, 0, bayesian.Propose()), settings.Epochs, 1, []);
                next++;
                running++;
            }
            Report(finished.Count, settings.MaxRecommendations);
            if (running == 0 && next > settings.MaxRecommendations)
                End(finished.Where(f => double.IsFinite(f.Score)).OrderByDescending(f => f.Score).ThenBy(f => f.Trial.Number).Select(f => f.Job).FirstOrDefault());
        }

        public void Hyperband()
        {
            var hyperband = new HyperbandSearch(space, settings.R, settings.Nu, new Random(settings.Seed));
            var total = hyperband.Schedule.Sum(b => b.Rungs.Sum(r => r.Trials));
            var done = 0;
            while (true)
            {
                var requests = hyperband.Next();
                if (hyperband.Finished || requests.Count == 0)
                    break;
                var (bracket, rung) = (hyperband.CurrentBracket, hyperband.CurrentRung);
                var scores = new List<(int Trial, double Score)>();
                var waiting = false;
                foreach (var request in requests)
                {
                    var attempts = trials.Where(t => t.Trial.Number == request.TrialId && t.Trial.Bracket == bracket && t.Trial.Rung == rung)
                        .OrderByDescending(t => t.Job.Attempt).ToList();
                    var latest = attempts.Count == 0 ? ((JobRecord, AutomlTrial)?)null : attempts[0];
                    var outcome = latest is { } found ? Outcome(found.Item1) : TrialState.Again;
                    if (outcome == TrialState.Again)
                    {
                        var trial = latest?.Item2 ?? NewTrial(request.TrialId, bracket, rung, request.Configuration);
                        Start(trial, settings.EpochsFor(request.Resource), (latest?.Item1.Attempt ?? 0) + 1, PreviousFolders(request.TrialId, rung));
                        waiting = true;
                    }
                    else if (outcome == TrialState.Running)
                        waiting = true;
                    else
                    {
                        scores.Add((request.TrialId, ScoreOf(latest!.Value.Item1) ?? double.NegativeInfinity));
                        done++;
                    }
                }
                if (waiting)
                    break;
                foreach (var (trial, score) in scores)
                    hyperband.Report(trial, score);
            }
            Report(done, total);
            if (hyperband.Finished)
            {
                var best = hyperband.Best is { } number
                    ? trials.Where(t => t.Trial.Number == number && t.Job.Status == JobStatus.Done)
                        .OrderByDescending(t => t.Trial.Rung).ThenByDescending(t => t.Job.Attempt).Select(t => t.Job).FirstOrDefault()
                    : null;
                End(best is not null && ScoreOf(best) is not null ? best : null);
            }
        }

        private AutomlTrial NewTrial(int number, int bracket, int rung, IReadOnlyDictionary<string, object> configuration) => new()
        {
            SearchJobId = search.Id,
            Number = number,
            Bracket = bracket,
            Rung = rung,
            Parameters = space.Parameters.ToDictionary(p => p.Key, p => p.Format(configuration[p.Key]), StringComparer.Ordinal),
            Metric = settings.Metric.ToString().ToLowerInvariant(),
            HeldOutFraction = settings.HeldOutFraction,
        };

        private IReadOnlyDictionary<string, object> ConfigurationOf(AutomlTrial trial) =>
            space.Parameters.Where(p => trial.Parameters.ContainsKey(p.Key)).ToDictionary(
                p => p.Key,
                p => p.Kind == ParameterKind.Choice ? trial.Parameters[p.Key] : (object)double.Parse(trial.Parameters[p.Key], CultureInfo.InvariantCulture),
                StringComparer.Ordinal);

        /// <summary>
        /// Where a trial's job continues from, newest first: the earlier attempts at its rung (a resumed search), then
        /// its job at the rung before (Hyperband's promotion resumes the trial with more epochs).
        /// </summary>
        private IReadOnlyList<Uri> PreviousFolders(int number, int rung) =>
        [
            .. trials.Where(t => t.Trial.Number == number && t.Trial.Rung == rung).OrderByDescending(t => t.Job.Attempt).Select(t => Folder(t.Job)),
            .. trials.Where(t => t.Trial.Number == number && t.Trial.Rung == rung - 1 && t.Job.Status == JobStatus.Done)
                .OrderByDescending(t => t.Job.Attempt).Take(1).Select(t => Folder(t.Job)),
        ];

        private Uri Folder(JobRecord job) => owner.artifacts.JobFolder(job.PipelineId, job.Id);

        private void Start(AutomlTrial trial, int epochs, int attempt, IReadOnlyList<Uri> previous)
        {
            var pipeline = state.Pipeline;
            var staged = PipelineStateMachine.Output<DatasetStaged>(state, StageTrain);
            var jobId = Guid.NewGuid();
            trial = trial with { SearchJobId = search.Id };
            string spec;
            string? problem = null;
            try
            {
                var resolved = ResolvedSpec.FromJson(pipeline.Spec);
                // A Hyperband trial shorter than the learning-rate warm-up warms up over its whole run.
                var warmup = Math.Min(trial.Parameters.TryGetValue(WarmupKey, out var searched) ? int.Parse(searched, CultureInfo.InvariantCulture)
                    : resolved.Get<int>(WarmupKey), epochs);
                spec = owner.specs.Apply(resolved,
                [
                    .. trial.Parameters.Where(p => p.Key != WarmupKey).Select(p => $"{p.Key}={p.Value}"),
                    string.Create(CultureInfo.InvariantCulture, $"{WarmupKey}={warmup}"),
                    string.Create(CultureInfo.InvariantCulture, $"train.num_epochs={epochs}"),
                    $"{AutomlSettings.PolicyKey}=off",
                ]).ToJson();
            }
            catch (SpecValidationException exception)
            {
                // A combination the spec's rules refuse (warm-up longer than training, say): the trial fails, the search goes on.
                spec = pipeline.Spec;
                problem = $"the trial's values do not make a valid spec: {string.Join("; ", exception.Errors)}";
            }
            var command = new TrainModel
            {
                PipelineId = pipeline.Id, JobId = jobId, ParentJobId = search.Id, Spec = spec, OutputUri = owner.artifacts.JobFolder(pipeline.Id, jobId),
                DatasetUri = staged.DatasetUri, ManifestUri = staged.ManifestUri, PreviousAttempts = previous, Trial = trial,
            };
            var job = new JobRecord
            {
                Id = jobId,
                PipelineId = pipeline.Id,
                ParentJobId = search.Id,
                Step = TrialStep(trial.Number, trial.Rung),
                Stage = PipelineStage.Training,
                Attempt = attempt,
                Status = problem is null ? JobStatus.Pending : JobStatus.Error,
                ErrorReason = problem,
                Spec = spec,
                CommandType = typeof(TrainModel).FullName!,
                Command = JsonSerializer.Serialize(command),
                CreatedAt = owner.Now,
                UpdatedAt = owner.Now,
                CompletedAt = problem is null ? null : owner.Now,
                HandledAt = problem is null ? null : owner.Now,
            };
            state.Jobs.Add(job);
            trials.Add((job, trial));
            if (problem is null)
                Dispatch.Add(job);
        }

        private TrialState Outcome(JobRecord job) => job.Status switch
        {
            JobStatus.Pending or JobStatus.Running => TrialState.Running,
            // Under an earlier attempt of the search (the pipeline was canceled or failed, then resumed): it runs again.
            JobStatus.Error or JobStatus.Canceled when job.ParentJobId != search.Id => TrialState.Again,
            _ => TrialState.Ended,
        };

        private void Report(int done, int total)
        {
            var best = trials.Where(t => ScoreOf(t.Job) is not null).OrderByDescending(t => ScoreOf(t.Job)).FirstOrDefault();
            search.Progress = total == 0 ? 1 : Math.Min(1, (double)done / total);
            search.ProgressMessage = string.Create(CultureInfo.InvariantCulture, $"AutoML {settings.Algorithm.ToString().ToLowerInvariant()}: {done} of {total} trials scored")
                + (best.Job is null ? "" : string.Create(CultureInfo.InvariantCulture, $"; best so far trial {best.Trial.Number} ({ScoreOf(best.Job):0.####})"));
            search.UpdatedAt = owner.Now;
        }

        private void End(JobRecord? best)
        {
            search.CompletedAt = owner.Now;
            search.UpdatedAt = owner.Now;
            if (best is null)
            {
                var first = trials.Where(t => t.Job.Status is JobStatus.Error or JobStatus.Done).OrderBy(t => t.Trial.Number).Select(t => t.Job).FirstOrDefault();
                search.Status = JobStatus.Error;
                search.ErrorReason = "AutoML: no trial of the search produced a score"
                    + (first?.ErrorReason is { } reason ? $"; trial {TrialOf(first)!.Number} failed: {reason}" : "");
                return;
            }
            var winner = TrialOf(best)!;
            search.Status = JobStatus.Done;
            search.CompletionType = best.CompletionType;
            search.Completion = best.Completion;
            search.Artifacts = best.Artifacts;
            search.Metrics = JsonSerializer.Serialize(new Dictionary<string, double>
            {
                ["automl_trials"] = trials.Select(t => t.Trial.Number).Distinct().Count(),
                ["automl_best_trial"] = winner.Number,
                [AutomlTrial.ScoreMetric] = ScoreOf(best)!.Value,
            });
            search.Progress = 1;
            search.ProgressMessage = string.Create(CultureInfo.InvariantCulture,
                $"AutoML {settings.Algorithm.ToString().ToLowerInvariant()}: trial {winner.Number} won with {ScoreOf(best):0.####} ({string.Join(", ", winner.Parameters.Select(p => $"{p.Key}={p.Value}"))})");
            if (settings.DeleteIntermediateCheckpoints)
            {
                // The winner's earlier rungs too: its last job continued from them and holds its own.
                Prune.AddRange(trials.Where(t => t.Job.Id != best.Id && t.Job.Status is not (JobStatus.Pending or JobStatus.Running))
                    .Select(t => Folder(t.Job)));
            }
        }
    }

    private enum TrialState
    {
        Running,
        Again,
        Ended,
    }
}
