using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Ssl.Losses;
using NvDinoPipeline.Ssl.Optimization;
using NvDinoPipeline.Ssl.Schedules;
using NvDinoPipeline.Ssl.Teacher;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using NvDinoPipeline.Checkpoints;

namespace NvDinoPipeline.Training.Core;

/// <summary>
/// DINOv2 self-supervised training (Oquab et al. 2023, <c>SSLMetaArch.forward_backward</c>): a student
/// backbone with DINO and iBOT heads learns, by gradient, to match an EMA teacher of itself on multi-crop views.
/// Each <see cref="Step"/> runs the teacher on the global crops, the student on the masked global and the local
/// crops, and minimises DINO (class token) + iBOT (masked patches) + KoLeo, then updates the teacher by EMA.
/// Schedules (lr with warm-up, weight decay, teacher momentum and temperature, last-layer freeze) are indexed by
/// <see cref="GlobalStep"/>, so a trainer restored from a checkpoint continues exactly where the run stopped.
/// </summary>
public sealed class SslTrainer : ITrainableModel, IDisposable
{
    public const string CheckpointKind = "nvdinov2-ssl";
    public const string TeacherBackboneFileName = "teacher_backbone.safetensors";
    public const string StudentBackboneFileName = "student_backbone.safetensors";

    private readonly SslTrainerOptions options;
    private readonly SslSchedules schedules;
    private readonly ILogger logger;
    private readonly SslNetwork student;
    private readonly SslNetwork teacher;
    private readonly SslNetwork studentCompute;
    private readonly SslNetwork teacherCompute;
    private readonly SslObjective objective;
    private readonly ScheduledAdamW optimizer;
    private readonly List<(string Name, Parameter Parameter)> optimizerParameters;
    private readonly IReadOnlyList<Device> devices;
    private readonly SslNetwork[] studentReplicas;
    private readonly SslNetwork[] teacherReplicas;
    private readonly ReplicaParameters studentParameters = new();
    private readonly ReplicaParameters teacherParameters = new();
    private readonly ScalarType computeType;

    public SslTrainer(SslTrainerOptions options, long iterationsPerEpoch, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (iterationsPerEpoch < 1)
            throw new ArgumentOutOfRangeException(nameof(iterationsPerEpoch), iterationsPerEpoch, "must be at least 1");
        this.options = options;
        this.logger = logger ?? NullLogger.Instance;
        IterationsPerEpoch = iterationsPerEpoch;
        schedules = SslSchedules.Create(options.ScheduleOptions(), iterationsPerEpoch);
        devices = TrainingDevice.ResolveReplicas(options);
        Device = devices[0];
        Precision = TrainingPrecisions.Resolve(options.Precision, Device);
        computeType = Precision.Precision == TrainingPrecision.Bf16 ? ScalarType.BFloat16 : ScalarType.Float32;

        using (TorchRandom.Seeded(TrainingSeeds.ForTorch(options.Seed, -1)))
        {
            student = new SslNetwork(options.Backbone, options.Head, "student");
            teacher = new SslNetwork(options.Backbone, options.Head, "teacher");
            if (computeType == ScalarType.Float32)
            {
                studentCompute = student;
                teacherCompute = teacher;
            }
            else
            {
                studentCompute = new SslNetwork(options.Backbone, options.Head, "student_compute");
                teacherCompute = new SslNetwork(options.Backbone, options.Head, "teacher_compute");
            }
            // Replica 0 computes with the networks above; the others get copies, overwritten from the master every step.
            studentReplicas = [studentCompute, .. devices.Skip(1).Select((_, i) => new SslNetwork(options.Backbone, options.Head, $"student_replica{i + 1}"))];
            teacherReplicas = [teacherCompute, .. devices.Skip(1).Select((_, i) => new SslNetwork(options.Backbone, options.Head, $"teacher_replica{i + 1}"))];
        }
        student.to(Device);
        teacher.to(Device);
        TeacherEma.CopyFrom(teacher, student);
        foreach (var parameter in teacher.parameters())
            parameter.requires_grad = false;
        if (!ReferenceEquals(studentCompute, student))
        {
            studentCompute.to(computeType).to(Device);
            teacherCompute.to(computeType).to(Device);
            foreach (var parameter in teacherCompute.parameters())
                parameter.requires_grad = false;
        }
        for (var r = 1; r < devices.Count; r++)
        {
            studentReplicas[r].to(computeType).to(devices[r]);
            teacherReplicas[r].to(computeType).to(devices[r]);
            foreach (var parameter in teacherReplicas[r].parameters())
                parameter.requires_grad = false;
            studentReplicas[r].train();
            teacherReplicas[r].eval();
        }
        studentParameters.Add(student, studentReplicas);
        teacherParameters.Add(teacher, teacherReplicas);

        objective = new SslObjective(options.Head.NumPrototypes, options.Loss, Device);
        (optimizer, optimizerParameters) = TrainerSteps.BuildOptimizer(student.Parts(), options.Backbone.Depth, options.Optim);

        student.train();
        studentCompute.train();
        teacher.eval();
        teacherCompute.eval();
    }

    public SslTrainerOptions Options => options;

    /// <summary>The device of the master weights, the optimizer and replica 0.</summary>
    public Device Device { get; }

    /// <summary>The device of each data-parallel replica, replica 0 first.</summary>
    public IReadOnlyList<Device> Devices => devices;

    /// <summary>The precision the steps compute in (train.precision, or what <c>auto</c> chose on this device).</summary>
    public PrecisionChoice Precision { get; }

    public long IterationsPerEpoch { get; }

    public long GlobalStep { get; private set; }

    public int Epochs => options.Epochs;

    /// <summary>Epochs completed.</summary>
    public int Epoch => (int)(GlobalStep / IterationsPerEpoch);

    public long TotalSteps => options.Epochs * IterationsPerEpoch;

    /// <summary>The float32 student (backbone and heads) that the optimizer updates.</summary>
    public SslNetwork Student => student;

    /// <summary>The EMA teacher; its backbone is the model a training run delivers.</summary>
    public SslNetwork Teacher => teacher;

    public SslSchedules Schedules => schedules;

    public DinoLoss DinoLoss => objective.Dino;

    public IbotPatchLoss IbotLoss => objective.Ibot;

    /// <summary>Metrics of the last completed epoch, saved with the next checkpoint.</summary>
    public IReadOnlyDictionary<string, double> LastEpochMetrics { get; private set; } = new Dictionary<string, double>();

    /// <summary>
    /// One step on <paramref name="batch"/> (<see cref="SslTrainerOptions.BatchSize"/> images per replica): every replica
    /// runs the teacher and the student on its share, the loss centers are updated from all replicas' teacher outputs,
    /// the gradients are averaged onto the master, which clips and steps; the teacher follows by EMA.
    /// </summary>
    public TrainingStepResult Step(SslBatch batch)
    {
        TrainerSteps.CheckBatch(batch, GlobalStep, TotalSteps);
        var step = GlobalStep;
        var epoch = Epoch;
        var values = schedules.At(step);
        using var random = TorchRandom.Seeded(TrainingSeeds.ForTorch(options.Seed, step));
        using var scope = torch.NewDisposeScope();

        studentParameters.Broadcast();
        teacherParameters.Broadcast();
        optimizer.ApplySchedules(values.Lr, values.WeightDecay, values.LastLayerLr);
        studentParameters.ClearGradients();

        var shares = BatchShare.Split(batch, devices.Count);
        var replicas = ReplicaGroup.Run(devices, r => TrainingSeeds.ForReplica(options.Seed, step, r), replica =>
        {
            var share = shares[replica.Index];
            var global = share.GlobalCrops.to(replica.Device).to(computeType);
            var local = share.LocalCrops?.to(replica.Device).to(computeType);
            var masks = share.Masks.to(replica.Device);
            var maskIndices = share.MaskIndices.to(replica.Device);
            var masksWeight = share.MasksWeight.to(replica.Device);

            var scores = SslObjective.Score(teacherReplicas[replica.Index], global, maskIndices);
            var targets = replica.Exchange(scores, all => objective.Targets(all, values.TeacherTemp));
            var terms = objective.Learn(studentReplicas[replica.Index], global, local, masks, masks, maskIndices, masksWeight, targets);
            var total = terms.Total(options.Loss);
            var totalValue = total.item<float>();
            if (!float.IsFinite(totalValue))
                return new ReplicaFigures(totalValue, [], terms.Describe());
            total.backward();
            var figures = terms.Metrics(totalValue, values, 0, share.MaskIndices.shape[0]);
            figures[TrainingMetrics.TeacherEntropy] = targets.Entropy();
            return new ReplicaFigures(totalValue, figures, null);
        });

        if (replicas.FirstOrDefault(r => r.Divergence is not null) is { } diverged)
            throw new TrainingDivergedException(step,
                $"The loss is {diverged.Total} at step {step} (epoch {epoch}): {diverged.Divergence}, lr {values.Lr:G4}. The step was not applied to the weights.");

        studentParameters.AverageGradientsOntoMaster();
        var gradNorm = ClipGradients();
        LastLayerFreeze.CancelGradients(student.named_parameters(), epoch, options.Optim.FreezeLastLayerEpochs);
        optimizer.Step();
        TeacherEma.Update(teacher, student, values.TeacherMomentum);
        GlobalStep = step + 1;

        var metrics = ReplicaFigures.Mean(replicas);
        metrics[TrainingMetrics.GradNorm] = gradNorm;
        metrics[TrainingMetrics.MaskedPatches] = batch.Masks.MaskedPatchCount;
        metrics[TrainingMetrics.TeacherMomentum] = values.TeacherMomentum;
        return new TrainingStepResult(step, epoch, batch.Images, metrics);
    }

    public void EpochCompleted(EpochSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        LastEpochMetrics = summary.Metrics;
    }

    /// <summary>
    /// Writes <c>epoch_NNN.ckpt</c> (the full state, see <see cref="TrainingCheckpointFile"/>) and the teacher and
    /// student backbones into <paramref name="directory"/>.
    /// </summary>
    public SavedCheckpoint SaveCheckpoint(string directory) =>
        TrainerSteps.SaveCheckpoint(directory, Epoch, GlobalStep, IterationsPerEpoch, SaveCheckpointFile,
            (teacher.Backbone, TeacherBackboneFileName), (student.Backbone, StudentBackboneFileName));

    /// <summary>Writes the full training state to <paramref name="path"/> (atomically: written aside, then renamed).</summary>
    public void SaveCheckpointFile(string path) =>
        TrainingCheckpointFile.WriteWithOptimizer(path, StateTensors(), OptimizerStates(),
            TrainingStates.Of(CheckpointKind, options, GlobalStep, IterationsPerEpoch, LastEpochMetrics), options.Backbone);

    /// <summary>
    /// Restores networks, loss centers, optimizer state and the step from a checkpoint of the same architecture.
    /// When the checkpoint was taken with another number of steps per epoch (another dataset or batch size), training
    /// continues after the epochs it completed.
    /// </summary>
    /// <exception cref="InvalidDataException">Not a training checkpoint, or a tensor is missing.</exception>
    /// <exception cref="TensorShapeMismatchException">A tensor does not fit this trainer's architecture.</exception>
    public TrainingState LoadCheckpoint(string path)
    {
        var state = TrainingCheckpointFile.Restore(path, CheckpointKind, "self-supervised training", StateTensors(), OptimizerStates());
        GlobalStep = state.ContinueAtStep(IterationsPerEpoch);
        if (state.IterationsPerEpoch != IterationsPerEpoch)
            logger.LogWarning(
                "Checkpoint {Path} was taken with {CheckpointIterations} steps per epoch, this run has {Iterations}; continuing after epoch {Epoch} at step {Step}",
                path, state.IterationsPerEpoch, IterationsPerEpoch, Epoch, GlobalStep);
        if (state.Seed != options.Seed)
            logger.LogWarning("Checkpoint {Path} was trained with seed {CheckpointSeed}, this trainer uses {Seed}; data order and augmentation differ from the original run",
                path, state.Seed, options.Seed);
        LastEpochMetrics = state.Metrics;
        return state;
    }

    /// <summary>
    /// Loads pretrained backbone weights (safetensors or a PyTorch .pth state dict, DINOv2/TAO key names) into the
    /// student and copies them to the teacher. Unexpected keys are reported, not fatal; missing ones are fatal unless
    /// <paramref name="allowPartial"/>.
    /// </summary>
    /// <exception cref="TensorShapeMismatchException">A tensor does not fit the backbone; the message names it.</exception>
    /// <exception cref="IncompleteCheckpointException">Backbone parameters are missing and partial loading is not allowed.</exception>
    public LoadReport LoadPretrainedBackbone(string path, bool allowPartial = false)
    {
        var report = BackboneWeights.Load(student.Backbone, path, new LoadOptions { AllowPartial = allowPartial });
        TeacherEma.CopyFrom(teacher.Backbone, student.Backbone);
        return report;
    }

    public void Dispose()
    {
        optimizer.Dispose();
        if (!ReferenceEquals(studentCompute, student))
            studentCompute.Dispose();
        if (!ReferenceEquals(teacherCompute, teacher))
            teacherCompute.Dispose();
        foreach (var replica in studentReplicas.Skip(1).Concat(teacherReplicas.Skip(1)))
            replica.Dispose();
        student.Dispose();
        teacher.Dispose();
        objective.Dispose();
    }

    private IEnumerable<(string Key, Tensor Tensor)> StateTensors()
    {
        foreach (var (name, parameter) in student.named_parameters())
            yield return ($"student.{name}", parameter);
        foreach (var (name, parameter) in teacher.named_parameters())
            yield return ($"teacher.{name}", parameter);
        foreach (var center in objective.StateTensors())
            yield return center;
    }

    private List<(string Name, AdamW.State State)> OptimizerStates() => TrainerSteps.OptimizerStates(optimizer, optimizerParameters);

    // DINOv2 clips each part of the student (backbone, DINO head, iBOT head) on its own.
    private double ClipGradients() => TrainerSteps.ClipPerPart(student.Parts(), options.Optim.ClipGradNorm);

}

/// <summary>The loss became NaN or infinite; the step was not applied.</summary>
public sealed class TrainingDivergedException(long step, string message) : Exception(message)
{
    public long Step { get; } = step;
}
