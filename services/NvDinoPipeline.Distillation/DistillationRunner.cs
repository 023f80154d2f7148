using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Training.Core.Data;
using NvDinoPipeline.Training.Jobs;
using NvDinoPipeline.Checkpoints;

namespace NvDinoPipeline.Distillation;

/// <summary>
/// Distils a trained NVDINOv2 teacher into a smaller student on the staged dataset (TAO's <c>nvdinov2 distill</c>).
/// The teacher comes frozen from the training job's checkpoint (<see cref="DistillModel.TeacherCheckpointUri"/>: a full
/// training checkpoint, whose heads teach too, or backbone-only weights such as <c>teacher_backbone.safetensors</c>).
/// Writes into the job folder <c>checkpoints/epoch_NNN.ckpt</c> every <c>train.checkpoint_interval</c> epochs (and after
/// the last), the latest <c>student_backbone.safetensors</c> and <c>student_ema_backbone.safetensors</c>, and
/// <c>metrics.jsonl</c>. A job that starts again continues from its newest checkpoint, step for step.
/// </summary>
public sealed class DistillationRunner(IArtifactStore store, IOptions<DistillationOptions> options, ILogger<DistillationRunner> logger)
    : IStageRunner<DistillModel, DistillationCompleted>
{
    public const string CheckpointsFolder = JobCheckpoints.CheckpointsFolder;
    public const string MetricsFileName = JobCheckpoints.MetricsFileName;

    public async Task<StageResult<DistillationCompleted>> RunAsync(DistillModel command, StageContext context, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var jobFolder = context.OutputUri.AsFolder();
        var spec = ReadSpec(context.Spec);
        JobInputs.CheckHardware(spec.Training, settings.Device, "Distillation:Device", "distil");
        TrainingDevice.SetCpuThreads(spec.Training.NumThreads);
        var started = Stopwatch.StartNew();

        var scratch = context.ScratchDirectory;
        var checkpointDirectory = Path.Combine(scratch, "checkpoints");
        Directory.CreateDirectory(checkpointDirectory);
        var teacherUri = await SelectTeacherAsync(command.TeacherCheckpointUri, spec.TeacherCheckpoint, cancellationToken);
        await context.ReportNowAsync(new StageProgress(0, $"opening the teacher {teacherUri} (distill.teacher_checkpoint = {spec.TeacherCheckpoint})"), cancellationToken);
        var teacherPath = await TeacherPathAsync(teacherUri, Path.Combine(scratch, "teacher"), cancellationToken);
        await context.ReportNowAsync(new StageProgress(0, $"opening the dataset {command.DatasetUri}"), cancellationToken);
        using var images = await JobInputs.OpenDatasetAsync(store, command.DatasetUri, Path.Combine(scratch, "dataset"), cancellationToken);
        var batchSize = spec.Training.Data.BatchSize;
        var iterations = JobInputs.StepsPerEpoch(images, command.DatasetUri, batchSize, spec.Training.NumGpus);

        var resume = await JobCheckpoints.FindResumePointAsync(store, jobFolder, checkpointDirectory, scratch, command.PreviousAttempts, cancellationToken);
        var recipe = spec.Trainer.Trainer with { Device = string.IsNullOrWhiteSpace(settings.Device) ? null : settings.Device };
        if (resume is not null)
            recipe = recipe with { Seed = resume.State.Seed };
        var trainerOptions = spec.Trainer with { Trainer = recipe };

        if (spec.Training.Trainer.Precision == TrainingPrecision.Bf16)
            logger.LogInformation("Distillation runs in fp32; train.precision {Precision} applies to the training stage only (job {JobId})",
                spec.Training.Trainer.Precision, command.JobId);
        using var trainer = new DistillationTrainer(trainerOptions, iterations, logger);
        TeacherSource teacher;
        try
        {
            teacher = trainer.LoadTeacher(teacherPath, spec.TeacherBackbone);
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException($"{exception.Message} (teacher {teacherUri})", exception);
        }
        logger.LogInformation(
            "Distilling {TeacherType} ({TeacherParameters} parameters, heads from checkpoint: {Heads}) into {StudentType} ({StudentParameters} parameters) on {Images} images of {DatasetUri}: {Epochs} epochs of {Iterations} steps, batch {Batch}, masking {Masking}, job {JobId} of pipeline {PipelineId}",
            spec.TeacherType, trainer.Teacher.Backbone.ParameterCount, teacher.HeadsFromCheckpoint, spec.StudentType, trainer.Student.Backbone.ParameterCount,
            images.Count, command.DatasetUri, recipe.Epochs, iterations, batchSize, !spec.Trainer.DisableMasking, command.JobId, command.PipelineId);

        var startMessage = $"distilling {spec.TeacherType} into {spec.StudentType} from scratch" +
            (teacher.HeadsFromCheckpoint ? "" : " (the teacher file has no DINO/iBOT heads: fresh teacher heads)");
        if (resume is not null)
        {
            try
            {
                trainer.LoadCheckpoint(resume.Path);
            }
            catch (Exception exception) when (exception is InvalidDataException or TensorShapeMismatchException)
            {
                throw new StageInputException($"cannot resume from {resume.Description}: {exception.Message}", exception);
            }
            startMessage = $"resuming {resume.Description} at epoch {trainer.Epoch} (step {trainer.GlobalStep} of {trainer.TotalSteps})";
            logger.LogInformation("Resuming {Source} at epoch {Epoch}, step {Step}, job {JobId}", resume.Description, trainer.Epoch, trainer.GlobalStep, command.JobId);
        }

        var jobLoop = new TrainingJobLoop(store, context, logger);
        var outcome = await jobLoop.RunAsync(trainer, images, spec.Training, recipe.Seed,
            checkpointDirectory, resume, startMessage + JobInputs.DevicesText(trainer.Devices), settings.ProgressInterval, "Lower train.optim.lr or raise dataset.batch_size", cancellationToken);
        var checkpointUri = outcome.CheckpointUri;

        var studentUri = jobFolder.Append(DistillationTrainer.StudentBackboneFileName);
        var emaUri = jobFolder.Append(DistillationTrainer.StudentEmaBackboneFileName);
        var metricsUri = jobFolder.Append(MetricsFileName);
        var metrics = await jobLoop.CompleteAsync(outcome, trainer, trainer.LastEpochMetrics,
        [
            ("images", images.Count),
            ("parameters", trainer.Student.Backbone.ParameterCount),
            ("teacher_parameters", trainer.Teacher.Backbone.ParameterCount),
            ("seconds", started.Elapsed.TotalSeconds),
        ], cancellationToken);

        var completed = new DistillationCompleted
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            CheckpointUri = checkpointUri,
            StudentBackboneUri = studentUri,
            StudentEmaBackboneUri = emaUri,
            Metrics = metrics,
        };
        var artifacts = new Dictionary<string, Uri>
        {
            ["checkpoint"] = checkpointUri,
            ["student_backbone"] = studentUri,
            ["student_ema_backbone"] = emaUri,
            ["metrics"] = metricsUri,
        };
        return new StageResult<DistillationCompleted>(completed, artifacts, metrics)
        {
            Summary = string.Create(CultureInfo.InvariantCulture,
                $"{spec.TeacherType} distilled into {spec.StudentType}: {trainer.Epoch} epochs ({trainer.GlobalStep} steps), final loss {metrics.GetValueOrDefault(TrainingMetrics.Loss, double.NaN):F4}"),
        };
    }

    private static DistillationSpec ReadSpec(ResolvedSpec spec)
    {
        try
        {
            return DistillationSpec.Read(spec);
        }
        catch (SpecValidationException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }

    /// <summary>
    /// The checkpoint <c>distill.teacher_checkpoint</c> names, among those of the training job whose latest checkpoint is
    /// <paramref name="latest"/>: latest, best (the epoch checkpoint with the lowest mean training loss, read from
    /// the checkpoints' headers only), an epoch number, or a path.
    /// </summary>
    public async Task<Uri> SelectTeacherAsync(Uri latest, string selector, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(latest);
        ArgumentException.ThrowIfNullOrWhiteSpace(selector);
        try
        {
            var selection = CheckpointSelection.Parse(DistillationSpec.TeacherCheckpointKey, selector);
            // The training job's latest checkpoint sits in its checkpoints/ folder: the job's folder is the one above.
            var chosen = await CheckpointChoice.ChooseAsync(store, selection, new Uri(latest, ".."), latest, cancellationToken);
            if (chosen.Epoch is { } epoch)
                logger.LogInformation("Teacher checkpoint {CheckpointUri}: epoch {Epoch} ({Selection})", chosen.Uri, epoch, selection.ToString());
            return chosen.Uri;
        }
        catch (CheckpointChoiceException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }

    private async Task<string> TeacherPathAsync(Uri teacherUri, string scratch, CancellationToken cancellationToken)
    {
        try
        {
            if (await store.GetInfoAsync(teacherUri, cancellationToken) is null)
                throw new StageInputException($"The teacher checkpoint {teacherUri} does not exist; was the training job's checkpoint removed?");
            return await store.GetLocalPathAsync(teacherUri, scratch, cancellationToken);
        }
        catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException or ArgumentException or ArtifactStoreException { Transient: false })
        {
            throw new StageInputException($"The teacher checkpoint {teacherUri} cannot be read: {exception.Message}", exception);
        }
    }

}
