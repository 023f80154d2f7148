using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Training.Core.Data;
using NvDinoPipeline.Training.Jobs;

namespace NvDinoPipeline.Training;

/// <summary>
/// Trains an NVDINOv2 backbone on a staged dataset (TAO's <c>nvdinov2 train</c>). Writes into the job folder
/// <c>checkpoints/epoch_NNN.ckpt</c> every <c>train.checkpoint_interval</c> epochs (and after the last), the latest
/// <c>teacher_backbone.safetensors</c> and <c>student_backbone.safetensors</c>, and <c>metrics.jsonl</c> (one line per
/// epoch). A job that starts again (crash, restart, another worker) continues from its newest checkpoint, in the
/// job's scratch folder or its artifact folder, and continues the same run step for step.
/// </summary>
public sealed class TrainingRunner(IArtifactStore store, IOptions<TrainingOptions> options, ILogger<TrainingRunner> logger)
    : IStageRunner<TrainModel, TrainingCompleted>
{
    public const string CheckpointsFolder = JobCheckpoints.CheckpointsFolder;
    public const string MetricsFileName = JobCheckpoints.MetricsFileName;

    public async Task<StageResult<TrainingCompleted>> RunAsync(TrainModel command, StageContext context, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var jobFolder = context.OutputUri.AsFolder();
        var spec = ReadSpec(context.Spec);
        JobInputs.CheckHardware(spec, settings.Device, "Training:Device", "train");
        TrainingDevice.SetCpuThreads(spec.NumThreads);
        var started = Stopwatch.StartNew();

        var scratch = context.ScratchDirectory;
        var checkpointDirectory = Path.Combine(scratch, "checkpoints");
        Directory.CreateDirectory(checkpointDirectory);
        await context.ReportNowAsync(new StageProgress(0, $"opening the dataset {command.DatasetUri}"), cancellationToken);
        using var staged = await JobInputs.OpenDatasetAsync(store, command.DatasetUri, Path.Combine(scratch, "dataset"), cancellationToken);
        var trial = command.Trial is { } automl ? TrialScore.Plan(automl, staged) : null;
        // A trial scored by k-NN trains without the images it is scored on.
        IImageSource images = trial?.Split is { } split
            ? new SubsetImageSource(staged, split.Train, $"{staged.Description} less the {split.HeldOut.Count} images trial {trial.Trial.Number} is scored on")
            : staged;
        var batchSize = spec.Data.BatchSize;
        var iterations = JobInputs.StepsPerEpoch(images, command.DatasetUri, batchSize, spec.NumGpus);

        var resume = await FindResumeCheckpointAsync(jobFolder, checkpointDirectory, spec, scratch, command.PreviousAttempts, cancellationToken);
        var trainerOptions = spec.Trainer with { Device = string.IsNullOrWhiteSpace(settings.Device) ? null : settings.Device };
        if (resume is not null)
            trainerOptions = trainerOptions with { Seed = resume.State.Seed };

        using var trainer = new SslTrainer(trainerOptions, iterations, logger);
        logger.LogInformation(
            "Training {Backbone} ({Parameters} parameters, patch {Patch}) on {Images} images of {DatasetUri}: {Epochs} epochs of {Iterations} steps, batch {Batch}, {Precision} on {Device}, seed {Seed}, job {JobId} of pipeline {PipelineId}",
            spec.Trainer.Backbone.EmbedDim + "/" + spec.Trainer.Backbone.Depth, trainer.Student.Backbone.ParameterCount, spec.Trainer.Backbone.PatchSize,
            images.Count, command.DatasetUri, spec.Trainer.Epochs, iterations, batchSize, trainer.Precision, string.Join(", ", trainer.Devices), trainerOptions.Seed,
            command.JobId, command.PipelineId);

        var startMessage = "training from scratch";
        if (resume is not null)
        {
            LoadCheckpoint(trainer, resume);
            startMessage = $"resuming {resume.Description} at epoch {trainer.Epoch} (step {trainer.GlobalStep} of {trainer.TotalSteps})";
            logger.LogInformation("Resuming {Source} at epoch {Epoch}, step {Step}, job {JobId}", resume.Description, trainer.Epoch, trainer.GlobalStep, command.JobId);
        }
        else if (spec.PretrainedModelPath is { } pretrained)
        {
            startMessage = await LoadPretrainedAsync(trainer, pretrained, spec.AllowPartialPretrainedLoad, scratch, cancellationToken);
        }

        var jobLoop = new TrainingJobLoop(store, context, logger);
        var outcome = await jobLoop.RunAsync(trainer, images, spec, trainerOptions.Seed,
            checkpointDirectory, resume, $"{startMessage} in {trainer.Precision}{JobInputs.DevicesText(trainer.Devices)}", settings.ProgressInterval,
            "Lower train.optim.lr, raise train.teacher.warmup_teacher_temp_epochs or dataset.batch_size, or set train.optim.clip_grad_norm",
            cancellationToken);
        var checkpointUri = outcome.CheckpointUri;

        var teacherUri = jobFolder.Append(SslTrainer.TeacherBackboneFileName);
        var studentUri = jobFolder.Append(SslTrainer.StudentBackboneFileName);
        var metricsUri = jobFolder.Append(MetricsFileName);
        IReadOnlyList<(string, double)> trialFigures = [];
        if (trial is not null)
        {
            await context.ReportNowAsync(new StageProgress(1, $"scoring AutoML trial {trial.Trial.Number} by {trial.MetricName}"), cancellationToken);
            trialFigures = trial.Score(trainer, staged, spec.Data.Crops.GlobalCropsSize, cancellationToken);
            logger.LogInformation("AutoML trial {Trial} of search {SearchJobId}: {Figures}", trial.Trial.Number, trial.Trial.SearchJobId,
                string.Join(", ", trialFigures.Select(f => string.Create(CultureInfo.InvariantCulture, $"{f.Item1} {f.Item2:0.####}"))));
        }
        var metrics = await jobLoop.CompleteAsync(outcome, trainer, trainer.LastEpochMetrics,
        [
            ("images", images.Count),
            ("parameters", trainer.Student.Backbone.ParameterCount),
            ("seconds", started.Elapsed.TotalSeconds),
            .. trialFigures,
        ], cancellationToken);

        var completed = new TrainingCompleted
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            CheckpointUri = checkpointUri,
            TeacherBackboneUri = teacherUri,
            StudentBackboneUri = studentUri,
            Epochs = trainer.Epoch,
            Metrics = metrics,
        };
        var artifacts = new Dictionary<string, Uri>
        {
            ["checkpoint"] = checkpointUri,
            ["teacher_backbone"] = teacherUri,
            ["student_backbone"] = studentUri,
            ["metrics"] = metricsUri,
        };
        return new StageResult<TrainingCompleted>(completed, artifacts, metrics)
        {
            Summary = string.Create(CultureInfo.InvariantCulture,
                $"{trainer.Epoch} epochs ({trainer.GlobalStep} steps) in {trainer.Precision.Precision.ToString().ToLowerInvariant()}, final loss {metrics.GetValueOrDefault(TrainingMetrics.Loss, double.NaN):F4}"),
        };
    }

    private static TrainingSpec ReadSpec(ResolvedSpec spec)
    {
        try
        {
            return TrainingSpec.Read(spec);
        }
        catch (SpecValidationException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }

    /// <summary>
    /// The newest checkpoint of this job (its scratch copy or the uploaded ones), else of an earlier attempt of its step
    /// (a resumed pipeline), else <c>train.resume_training_checkpoint_path</c>. A restart of the job, or a new attempt,
    /// continues the run that was stopped even when the spec names another checkpoint to start from.
    /// </summary>
    private async Task<ResumePoint?> FindResumeCheckpointAsync(Uri jobFolder, string checkpointDirectory, TrainingSpec spec, string scratch,
        IReadOnlyList<Uri> previousAttempts, CancellationToken cancellationToken)
    {
        var best = await JobCheckpoints.FindResumePointAsync(store, jobFolder, checkpointDirectory, scratch, previousAttempts, cancellationToken);
        if (best is not null || spec.ResumeCheckpointPath is not { } configured)
            return best;

        const string key = "train.resume_training_checkpoint_path";
        var path = await store.LocalPathAsync(configured, key, Path.Combine(scratch, "downloads"), cancellationToken);
        try
        {
            return new ResumePoint(path, TrainingCheckpointFile.ReadState(path), $"{key} {configured}", key);
        }
        catch (Exception exception) when (exception is InvalidDataException or IOException)
        {
            throw new StageInputException($"{key}: '{configured}' is not a training checkpoint: {exception.Message}", exception);
        }
    }

    private void LoadCheckpoint(SslTrainer trainer, ResumePoint resume)
    {
        try
        {
            trainer.LoadCheckpoint(resume.Path);
        }
        catch (Exception exception) when (exception is InvalidDataException or TensorShapeMismatchException)
        {
            var key = resume.SpecKey is null ? "" : $"{resume.SpecKey}: ";
            throw new StageInputException($"{key}cannot resume from {resume.Description}: {exception.Message}", exception);
        }
    }

    private async Task<string> LoadPretrainedAsync(
        SslTrainer trainer, string pretrained, bool allowPartial, string scratch, CancellationToken cancellationToken)
    {
        const string key = "train.pretrained_model_path";
        var path = await store.LocalPathAsync(pretrained, key, Path.Combine(scratch, "downloads"), cancellationToken);
        LoadReport report;
        try
        {
            report = trainer.LoadPretrainedBackbone(path, allowPartial);
        }
        catch (IncompleteCheckpointException exception)
        {
            throw new StageInputException(
                $"{key}: '{pretrained}' cannot be loaded: {exception.Message} " +
                "Set train.allow_partial_pretrained_load: true to start from it anyway, the missing parameters keeping their initial values.",
                exception);
        }
        catch (Exception exception) when (exception is InvalidDataException or TensorShapeMismatchException or NotSupportedException)
        {
            throw new StageInputException($"{key}: '{pretrained}' cannot be loaded: {exception.Message}", exception);
        }
        if (report.Loaded.Count == 0)
            throw new StageInputException(
                $"{key}: '{pretrained}' holds no tensor of this backbone (key prefix '{report.KeyPrefix}', {report.Unexpected.Count} unexpected keys such as " +
                $"{string.Join(", ", report.Unexpected.Take(3))}); is it a checkpoint of another architecture?");
        logger.LogInformation(
            "Loaded pretrained backbone {Path} ({KeyNaming} names): {LoadedPercent:0.##}% of the backbone's parameters, {Loaded} tensors, missing {Missing}, unexpected {Unexpected}, adapted {Interpolated}",
            pretrained, report.KeyNaming, report.LoadedParameterFraction * 100, report.Loaded.Count, report.Missing, report.Unexpected, report.Interpolated);
        var message = $"loaded {report.Loaded.Count} pretrained tensors ({(report.LoadedParameterFraction * 100).ToString("0.##", CultureInfo.InvariantCulture)}% of the backbone's parameters, {report.KeyNaming} names) from {pretrained}";
        if (report.Missing.Count > 0)
            message += $"; missing (left at their initial values): {string.Join(", ", report.Missing)}";
        if (report.Unexpected.Count > 0)
            message += $"; unexpected (ignored): {string.Join(", ", report.Unexpected)}";
        if (report.Interpolated.Count > 0)
            message += $"; adapted: {string.Join(", ", report.Interpolated)}";
        return message;
    }
}
