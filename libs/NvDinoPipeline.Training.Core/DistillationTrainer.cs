using System.Globalization;
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

/// <summary>What a distillation needs besides the number of steps per epoch.</summary>
public sealed record DistillationTrainerOptions
{
    /// <summary>Heads, optimiser, schedules, losses, epochs, batch and seed; <see cref="SslTrainerOptions.Backbone"/> is the teacher's architecture.</summary>
    public required SslTrainerOptions Trainer { get; init; }

    /// <summary>The student's architecture: same patch and image size as the teacher, no more parameters.</summary>
    public required BackboneConfig Student { get; init; }

    /// <summary><c>model.distill.disable_masking</c>: the student sees whole global crops and the iBOT term covers every patch.</summary>
    public bool DisableMasking { get; init; }

    /// <summary>Weight of 1 − cos(student CLS, teacher CLS); 0 turns the term off.</summary>
    public double ClsFeatureWeight { get; init; }

    /// <summary>Weight of the mean 1 − cos over patch tokens of the global crops; 0 turns the term off.</summary>
    public double PatchFeatureWeight { get; init; }

    public void Validate()
    {
        Trainer.Validate();
        Student.Validate();
        var teacher = Trainer.Backbone;
        if (Student.PatchSize != teacher.PatchSize || Student.ImgSize != teacher.ImgSize)
            throw new ArgumentException(
                $"The student (patch {Student.PatchSize}, image {Student.ImgSize}) must see the same patch grid as the teacher (patch {teacher.PatchSize}, image {teacher.ImgSize}).");
        if (Student.ParameterCount() > teacher.ParameterCount())
            throw new ArgumentException(
                $"The student ({Student.EmbedDim} wide, {Student.Depth} blocks, {Student.ParameterCount()} parameters) is larger than the teacher " +
                $"({teacher.EmbedDim} wide, {teacher.Depth} blocks, {teacher.ParameterCount()} parameters).");
        if (ClsFeatureWeight < 0 || PatchFeatureWeight < 0)
            throw new ArgumentException($"Feature-matching weights must not be negative, got cls {ClsFeatureWeight}, patch {PatchFeatureWeight}.");
    }
}

/// <summary>Where the teacher came from: its backbone load and whether its DINO/iBOT heads were in the checkpoint.</summary>
public sealed record TeacherSource(string Path, LoadReport Backbone, bool HeadsFromCheckpoint, bool CentersFromCheckpoint);

/// <summary>
/// NVDINOv2 distillation (TAO <c>nvdinov2 distill</c>; DINOv2 §5, "distillation of smaller models"): a frozen trained
/// teacher (backbone with DINO and iBOT heads, always in eval mode, no gradients) gives the DINO class-token and iBOT
/// patch targets on the global crops; a smaller student with its own heads learns them by gradient on global and local
/// crops, plus KoLeo and optional cosine feature matching of CLS and patch tokens (through a linear projection when the
/// widths differ). An EMA of the student is kept; both student backbones are the run's output. Schedules, optimiser
/// groups and clipping are the training recipe's; the teacher momentum schedule drives the student EMA.
/// </summary>
public sealed class DistillationTrainer : ITrainableModel, IDisposable
{
    public const string CheckpointKind = "nvdinov2-distill";
    public const string StudentBackboneFileName = "student_backbone.safetensors";
    public const string StudentEmaBackboneFileName = "student_ema_backbone.safetensors";

    private readonly DistillationTrainerOptions options;
    private readonly SslTrainerOptions recipe;
    private readonly SslSchedules schedules;
    private readonly ILogger logger;
    private readonly SslNetwork teacher;
    private readonly SslNetwork student;
    private readonly SslNetwork studentEma;
    private readonly Linear? featureProjection;
    private readonly SslObjective objective;
    private readonly ScheduledAdamW optimizer;
    private readonly List<(string Name, Parameter Parameter)> optimizerParameters;
    private readonly IReadOnlyList<Device> devices;
    private readonly SslNetwork[] teacherReplicas;
    private readonly SslNetwork[] studentReplicas;
    private readonly Linear?[] projectionReplicas;
    private readonly ReplicaParameters trainedParameters = new();
    private readonly ReplicaParameters teacherParameters = new();
    private bool teacherChanged = true;

    public DistillationTrainer(DistillationTrainerOptions options, long iterationsPerEpoch, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (iterationsPerEpoch < 1)
            throw new ArgumentOutOfRangeException(nameof(iterationsPerEpoch), iterationsPerEpoch, "must be at least 1");
        if (options.Trainer.Precision != TrainingPrecision.Fp32)
            throw new NotSupportedException($"Distillation runs in fp32; precision {options.Trainer.Precision} is not supported.");
        this.options = options;
        recipe = options.Trainer;
        this.logger = logger ?? NullLogger.Instance;
        IterationsPerEpoch = iterationsPerEpoch;
        schedules = SslSchedules.Create(recipe.ScheduleOptions(), iterationsPerEpoch);
        devices = TrainingDevice.ResolveReplicas(recipe);
        Device = devices[0];

        using (TorchRandom.Seeded(TrainingSeeds.ForTorch(recipe.Seed, -1)))
        {
            teacher = new SslNetwork(recipe.Backbone, recipe.Head, "teacher");
            student = new SslNetwork(options.Student, recipe.Head, "student");
            studentEma = new SslNetwork(options.Student, recipe.Head, "student_ema");
            if ((options.ClsFeatureWeight > 0 || options.PatchFeatureWeight > 0) && options.Student.EmbedDim != recipe.Backbone.EmbedDim)
                featureProjection = torch.nn.Linear(options.Student.EmbedDim, recipe.Backbone.EmbedDim);
            // Replica 0 computes with the networks above; the others get copies, overwritten from them before each step.
            teacherReplicas = [teacher, .. devices.Skip(1).Select((_, i) => new SslNetwork(recipe.Backbone, recipe.Head, $"teacher_replica{i + 1}"))];
            studentReplicas = [student, .. devices.Skip(1).Select((_, i) => new SslNetwork(options.Student, recipe.Head, $"student_replica{i + 1}"))];
            projectionReplicas = [featureProjection, .. devices.Skip(1).Select(_ => featureProjection is null ? null : torch.nn.Linear(options.Student.EmbedDim, recipe.Backbone.EmbedDim))];
        }
        teacher.to(Device);
        student.to(Device);
        studentEma.to(Device);
        featureProjection?.to(Device);
        TeacherEma.CopyFrom(studentEma, student);
        foreach (var parameter in teacher.parameters().Concat(studentEma.parameters()))
            parameter.requires_grad = false;

        for (var r = 1; r < devices.Count; r++)
        {
            teacherReplicas[r].to(devices[r]);
            studentReplicas[r].to(devices[r]);
            projectionReplicas[r]?.to(devices[r]);
            foreach (var parameter in teacherReplicas[r].parameters())
                parameter.requires_grad = false;
            teacherReplicas[r].eval();
            studentReplicas[r].train();
        }
        teacherParameters.Add(teacher, teacherReplicas);
        trainedParameters.Add(student, studentReplicas);
        if (featureProjection is not null)
            trainedParameters.Add(featureProjection, projectionReplicas.Select(p => (torch.nn.Module)p!).ToArray());

        objective = new SslObjective(recipe.Head.NumPrototypes, recipe.Loss, Device);
        (optimizer, optimizerParameters) = TrainerSteps.BuildOptimizer(TrainedParts(), options.Student.Depth, recipe.Optim);

        teacher.eval();
        studentEma.eval();
        student.train();
    }

    public DistillationTrainerOptions Options => options;

    /// <summary>The device of the master weights, the optimizer and replica 0.</summary>
    public Device Device { get; }

    /// <summary>The device of each data-parallel replica, replica 0 first.</summary>
    public IReadOnlyList<Device> Devices => devices;

    public long IterationsPerEpoch { get; }

    public long GlobalStep { get; private set; }

    public int Epochs => recipe.Epochs;

    public int Epoch => (int)(GlobalStep / IterationsPerEpoch);

    public long TotalSteps => recipe.Epochs * IterationsPerEpoch;

    /// <summary>The frozen teacher (backbone and heads).</summary>
    public SslNetwork Teacher => teacher;

    public SslNetwork Student => student;

    public SslNetwork StudentEma => studentEma;

    /// <summary>The DINO loss and its center, updated from the frozen teacher's outputs.</summary>
    public DinoLoss DinoLoss => objective.Dino;

    /// <summary>The iBOT loss and its center.</summary>
    public IbotPatchLoss IbotLoss => objective.Ibot;

    public IReadOnlyDictionary<string, double> LastEpochMetrics { get; private set; } = new Dictionary<string, double>();

    /// <summary>
    /// Loads the teacher from a training checkpoint (<paramref name="network"/> "teacher" for its EMA teacher, "student"
    /// for its student: backbone, DINO and iBOT heads and loss centers) or from backbone-only weights. Without heads in
    /// the file the teacher keeps freshly initialised heads (seeded by the run): its targets are then a fixed random
    /// projection of the trained features, which still transfers the teacher's feature geometry.
    /// </summary>
    /// <exception cref="InvalidDataException">The file does not fit the teacher architecture; the message names the file.</exception>
    public TeacherSource LoadTeacher(string path, string network = "teacher")
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (network is not ("teacher" or "student"))
            throw new ArgumentException($"The teacher is the checkpoint's 'teacher' or 'student' network, not '{network}'.", nameof(network));
        var isTraining = TrainingCheckpointFile.IsTrainingCheckpoint(path);
        var teacherConfig = recipe.Backbone;
        LoadReport report;
        try
        {
            report = BackboneWeights.Load(teacher.Backbone, path, new LoadOptions { KeyPrefix = isTraining ? $"{network}.backbone." : null, Strict = true });
        }
        catch (Exception exception) when (exception is TensorShapeMismatchException or InvalidDataException or ArgumentException or NotSupportedException)
        {
            var declared = BackboneWeights.ReadConfig(path) is { } saved
                ? string.Create(CultureInfo.InvariantCulture, $" The file holds a {saved.EmbedDim}-wide, {saved.Depth}-block backbone.")
                : "";
            throw new InvalidDataException(
                $"The teacher checkpoint '{path}' does not fit the teacher model.backbone.teacher_type " +
                $"({teacherConfig.EmbedDim} wide, {teacherConfig.Depth} blocks, {teacherConfig.NumHeads} heads, patch {teacherConfig.PatchSize}): {exception.Message}{declared}",
                exception);
        }

        var heads = false;
        var centers = false;
        if (isTraining)
        {
            using var checkpoint = TensorCheckpoint.Open(path);
            var headPlan = new List<(string Key, Tensor Target)>();
            foreach (var (prefix, module) in new (string, torch.nn.Module)[] { ("dino_head", teacher.DinoHead), ("ibot_head", teacher.IbotHead) })
            {
                foreach (var (name, parameter) in module.named_parameters())
                    headPlan.Add(($"{network}.{prefix}.{name}", parameter));
            }
            heads = headPlan.All(p => checkpoint.Entries.ContainsKey(p.Key));
            if (heads)
            {
                foreach (var (key, target) in headPlan)
                {
                    if (!checkpoint.Entries[key].Shape.SequenceEqual(target.shape))
                        throw new InvalidDataException(
                            $"The teacher checkpoint '{path}' has heads of another shape than model.head.*: " +
                            new TensorShapeMismatchException(key, checkpoint.Entries[key].Shape, target.shape).Message);
                }
                var centerPlan = objective.StateTensors().ToList();
                centers = centerPlan.All(p => checkpoint.Entries.TryGetValue(p.Key, out var entry) && entry.Shape.SequenceEqual(p.Tensor.shape));
                using var noGrad = torch.no_grad();
                foreach (var (key, target) in centers ? headPlan.Concat(centerPlan) : headPlan)
                {
                    using var value = checkpoint.Read(key);
                    target.copy_(value);
                }
            }
        }
        if (!heads)
            logger.LogWarning("The teacher checkpoint {Path} holds no DINO/iBOT heads: the teacher uses freshly initialised heads", path);
        teacher.eval();
        teacherChanged = true;
        return new TeacherSource(path, report, heads, centers);
    }

    /// <summary>
    /// One step on <paramref name="batch"/> (<see cref="SslTrainerOptions.BatchSize"/> images per replica): every replica
    /// runs the frozen teacher and the student on its share, the loss centers are updated from all replicas' teacher
    /// outputs, the gradients are averaged onto the master, which clips and steps; the student EMA follows.
    /// </summary>
    public TrainingStepResult Step(SslBatch batch)
    {
        TrainerSteps.CheckBatch(batch, GlobalStep, TotalSteps);
        var step = GlobalStep;
        var epoch = Epoch;
        var values = schedules.At(step);
        using var random = TorchRandom.Seeded(TrainingSeeds.ForTorch(recipe.Seed, step));
        using var scope = torch.NewDisposeScope();

        // The frozen teacher reaches the replicas once (and again after LoadTeacher); the trained networks every step.
        if (teacherChanged)
        {
            teacherParameters.Broadcast();
            teacherChanged = false;
        }
        trainedParameters.Broadcast();
        optimizer.ApplySchedules(values.Lr, values.WeightDecay, values.LastLayerLr);
        trainedParameters.ClearGradients();

        var shares = BatchShare.Split(batch, devices.Count);
        var replicas = ReplicaGroup.Run(devices, r => TrainingSeeds.ForReplica(recipe.Seed, step, r), replica =>
        {
            var r = replica.Index;
            var device = replica.Device;
            var share = shares[r];
            var global = share.GlobalCrops.to(device);
            var local = share.LocalCrops?.to(device);
            Tensor masks, maskIndices, masksWeight;
            if (options.DisableMasking)
            {
                // The crops' own patch grid: global crops (224) are usually smaller than img_size (518).
                var patchSize = options.Student.PatchSize;
                var patches = global.shape[2] / patchSize * (global.shape[3] / patchSize);
                masks = torch.ones([global.shape[0], patches], ScalarType.Bool, device);
                maskIndices = HeldScalars.Range(global.shape[0] * patches, ScalarType.Int64, device);
                masksWeight = IbotPatchLoss.MaskWeights(masks);
            }
            else
            {
                masks = share.Masks.to(device);
                maskIndices = share.MaskIndices.to(device);
                masksWeight = share.MasksWeight.to(device);
            }

            var scores = SslObjective.Score(teacherReplicas[r], global, maskIndices);
            var targets = replica.Exchange(scores, all => objective.Targets(all, values.TeacherTemp));
            var terms = objective.Learn(studentReplicas[r], global, local, options.DisableMasking ? null : masks, masks, maskIndices, masksWeight, targets);
            var clsMatch = options.ClsFeatureWeight > 0
                ? CosineDistance(Project(r, terms.Global.ClsToken), targets.Features.ClsToken)
                : torch.zeros([], ScalarType.Float32, device);
            var patchMatch = options.PatchFeatureWeight > 0
                ? CosineDistance(Project(r, terms.Global.PatchTokens), targets.Features.PatchTokens)
                : torch.zeros([], ScalarType.Float32, device);
            var total = terms.Total(recipe.Loss).Plus(clsMatch.Times(options.ClsFeatureWeight)).Plus(patchMatch.Times(options.PatchFeatureWeight));

            var totalValue = total.item<float>();
            if (!float.IsFinite(totalValue))
                return new ReplicaFigures(totalValue, [], terms.Describe());
            total.backward();
            var figures = terms.Metrics(totalValue, values, 0, maskIndices.shape[0]);
            figures[DistillationMetrics.ClsFeatureLoss] = clsMatch.item<float>();
            figures[DistillationMetrics.PatchFeatureLoss] = patchMatch.item<float>();
            figures[TrainingMetrics.TeacherEntropy] = targets.Entropy();
            return new ReplicaFigures(totalValue, figures, null);
        });

        if (replicas.FirstOrDefault(r => r.Divergence is not null) is { } diverged)
            throw new TrainingDivergedException(step,
                $"The distillation loss is {diverged.Total} at step {step} (epoch {epoch}): {diverged.Divergence}, lr {values.Lr:G4}. The weights are left as they were before this step.");

        trainedParameters.AverageGradientsOntoMaster();
        var gradNorm = ClipGradients();
        LastLayerFreeze.CancelGradients(student.named_parameters(), epoch, recipe.Optim.FreezeLastLayerEpochs);
        optimizer.Step();
        TeacherEma.Update(studentEma, student, values.TeacherMomentum);
        GlobalStep = step + 1;

        var metrics = ReplicaFigures.Mean(replicas);
        metrics[TrainingMetrics.GradNorm] = gradNorm;
        metrics[TrainingMetrics.MaskedPatches] = replicas.Sum(r => r.Metrics[TrainingMetrics.MaskedPatches]);
        metrics[DistillationMetrics.EmaMomentum] = values.TeacherMomentum;
        return new TrainingStepResult(step, epoch, batch.Images, metrics);
    }

    public void EpochCompleted(EpochSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        LastEpochMetrics = summary.Metrics;
    }

    /// <summary>Writes <c>epoch_NNN.ckpt</c> (student, student EMA, projection, loss centers, optimizer, run state) and both student backbones.</summary>
    public SavedCheckpoint SaveCheckpoint(string directory) =>
        TrainerSteps.SaveCheckpoint(directory, Epoch, GlobalStep, IterationsPerEpoch, SaveCheckpointFile,
            (student.Backbone, StudentBackboneFileName), (studentEma.Backbone, StudentEmaBackboneFileName));

    public void SaveCheckpointFile(string path) =>
        TrainingCheckpointFile.WriteWithOptimizer(path, StateTensors(), OptimizerStates(),
            TrainingStates.Of(CheckpointKind, recipe, GlobalStep, IterationsPerEpoch, LastEpochMetrics), options.Student);

    /// <summary>Restores student, student EMA, projection, loss centers, optimizer and step from a distillation checkpoint of the same architecture.</summary>
    /// <exception cref="InvalidDataException">Not a distillation checkpoint, or a tensor is missing.</exception>
    /// <exception cref="TensorShapeMismatchException">A tensor does not fit this student.</exception>
    public TrainingState LoadCheckpoint(string path)
    {
        var state = TrainingCheckpointFile.Restore(path, CheckpointKind, "distillation", StateTensors(), OptimizerStates());
        GlobalStep = state.ContinueAtStep(IterationsPerEpoch);
        LastEpochMetrics = state.Metrics;
        return state;
    }

    public void Dispose()
    {
        optimizer.Dispose();
        teacher.Dispose();
        student.Dispose();
        studentEma.Dispose();
        featureProjection?.Dispose();
        foreach (var replica in teacherReplicas.Skip(1).Concat(studentReplicas.Skip(1)))
            replica.Dispose();
        foreach (var projection in projectionReplicas.Skip(1))
            projection?.Dispose();
        objective.Dispose();
    }

    private IEnumerable<(string Prefix, torch.nn.Module Module)> TrainedParts()
    {
        foreach (var part in student.Parts())
            yield return part;
        if (featureProjection is not null)
            yield return ("feature_proj", featureProjection);
    }

    private IEnumerable<(string Key, Tensor Tensor)> StateTensors()
    {
        foreach (var (name, parameter) in student.named_parameters())
            yield return ($"student.{name}", parameter);
        foreach (var (name, parameter) in studentEma.named_parameters())
            yield return ($"student_ema.{name}", parameter);
        if (featureProjection is not null)
        {
            foreach (var (name, parameter) in featureProjection.named_parameters())
                yield return ($"feature_proj.{name}", parameter);
        }
        foreach (var center in objective.StateTensors())
            yield return center;
    }

    private Tensor Project(int replica, Tensor studentTokens) =>
        projectionReplicas[replica] is { } projection ? projection.forward(studentTokens) : studentTokens;

    private static Tensor CosineDistance(Tensor student, Tensor teacher) =>
        torch.nn.functional.cosine_similarity(student, teacher, dim: -1).SubtractedFrom(1).mean();

    private List<(string Name, AdamW.State State)> OptimizerStates() => TrainerSteps.OptimizerStates(optimizer, optimizerParameters);

    // Each trained part (student backbone, DINO head, iBOT head, projection) is clipped on its own, as in training.
    private double ClipGradients() => TrainerSteps.ClipPerPart(TrainedParts(), recipe.Optim.ClipGradNorm);
}

/// <summary>Figures a distillation step reports besides the training ones (<see cref="TrainingMetrics"/>).</summary>
public static class DistillationMetrics
{
    public const string ClsFeatureLoss = "cls_feature_loss";
    public const string PatchFeatureLoss = "patch_feature_loss";
    public const string EmaMomentum = "ema_momentum";
}
