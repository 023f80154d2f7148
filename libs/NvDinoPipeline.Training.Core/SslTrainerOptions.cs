using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Losses;
using NvDinoPipeline.Ssl.Schedules;

namespace NvDinoPipeline.Training.Core;

/// <summary>Numeric format of the forward and backward passes.</summary>
public enum TrainingPrecision
{
    Fp32,

    /// <summary>bf16 where the device has bfloat16 matrix instructions, else fp32 (<see cref="TrainingPrecisions.Resolve"/>).</summary>
    Auto,

    /// <summary>bfloat16 forward and backward on a copy of the networks; weights, optimizer state and the EMA stay float32.</summary>
    Bf16,
}

/// <summary>How the base learning rate grows with the total batch (<c>train.optim.scaling_rule</c>).</summary>
public enum LearningRateScalingRule
{
    /// <summary>DINOv2: base_lr · sqrt(total batch / 1024).</summary>
    SqrtWrt1024,

    /// <summary>base_lr · total batch / 1024.</summary>
    LinearWrt1024,

    None,
}

/// <summary>Shape of the DINO and the iBOT head (<c>model.head.*</c>).</summary>
public sealed record SslHeadOptions
{
    public int NumLayers { get; init; } = 3;

    public int HiddenDim { get; init; } = 2048;

    public int BottleneckDim { get; init; } = 384;

    public int NumPrototypes { get; init; } = 131072;
}

/// <summary>AdamW and its schedules (<c>train.optim.*</c>).</summary>
public sealed record SslOptimOptions
{
    /// <summary>Base learning rate for a total batch of 1024, scaled by <see cref="ScalingRule"/>.</summary>
    public double BaseLr { get; init; } = 2e-4;

    public LearningRateScalingRule ScalingRule { get; init; } = LearningRateScalingRule.SqrtWrt1024;

    public double MinLr { get; init; } = 1e-6;

    public int WarmupEpochs { get; init; } = 10;

    public double WeightDecay { get; init; } = 0.04;

    public double WeightDecayEnd { get; init; } = 0.2;

    public double LayerwiseDecay { get; init; } = 1.0;

    public double PatchEmbedLrMult { get; init; } = 0.2;

    /// <summary>Largest gradient norm of each network part (backbone, each head); 0 turns clipping off.</summary>
    public double ClipGradNorm { get; init; } = 3.0;

    public int FreezeLastLayerEpochs { get; init; } = 1;

    public double Beta1 { get; init; } = 0.9;

    public double Beta2 { get; init; } = 0.999;
}

/// <summary>Teacher EMA and temperature schedules (<c>train.teacher.*</c>).</summary>
public sealed record SslTeacherOptions
{
    public double MomentumTeacher { get; init; } = 0.994;

    public double FinalMomentumTeacher { get; init; } = 1.0;

    public double WarmupTeacherTemp { get; init; } = 0.04;

    public double TeacherTemp { get; init; } = 0.07;

    public int WarmupTeacherTempEpochs { get; init; } = 30;
}

/// <summary>Loss weights and settings (<c>train.loss.*</c>).</summary>
public sealed record SslLossOptions
{
    public double DinoLossWeight { get; init; } = 1.0;

    public double IbotLossWeight { get; init; } = 1.0;

    public double KoleoLossWeight { get; init; } = 0.1;

    public TeacherCentering Centering { get; init; } = TeacherCentering.Softmax;

    public double StudentTemp { get; init; } = 0.1;

    public double CenterMomentum { get; init; } = 0.9;

    /// <summary>Sinkhorn-Knopp normalisation rounds (DINOv2: 3).</summary>
    public int SinkhornIterations { get; init; } = 3;
}

/// <summary>Everything the <see cref="SslTrainer"/> needs besides the number of steps per epoch.</summary>
public sealed record SslTrainerOptions
{
    /// <summary>Architecture of both student and teacher.</summary>
    public required BackboneConfig Backbone { get; init; }

    public SslHeadOptions Head { get; init; } = new();

    public SslOptimOptions Optim { get; init; } = new();

    public SslTeacherOptions Teacher { get; init; } = new();

    public SslLossOptions Loss { get; init; } = new();

    public required int Epochs { get; init; }

    /// <summary>Images per step on each replica (<c>dataset.batch_size</c>, per GPU as in TAO).</summary>
    public required int BatchSize { get; init; }

    /// <summary>
    /// Replicas of the networks, one per device, that share each step's batch (<c>train.num_gpus</c>): a step's batch
    /// holds <see cref="BatchSize"/> images per replica, their gradients are averaged, and the learning rate scales with
    /// the total batch.
    /// </summary>
    public int DataParallelReplicas { get; init; } = 1;

    /// <summary><c>train.gpu_ids</c>: the CUDA devices of the replicas; empty uses 0 … <see cref="DataParallelReplicas"/> − 1.</summary>
    public IReadOnlyList<int> GpuIds { get; init; } = [];

    /// <summary>
    /// Runs every replica on the CPU device, so that data parallelism can be tested and measured on hosts without GPUs
    /// (tests and benchmarks). The workers never set it: several replicas there need as many CUDA devices.
    /// </summary>
    public bool ReplicasOnCpu { get; init; }

    /// <summary>Source of every random number of the run (non-negative).</summary>
    public long Seed { get; init; }

    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Fp32;

    /// <summary>"cpu", "cuda", "cuda:1"; null picks CUDA when available, else the CPU.</summary>
    public string? Device { get; init; }

    /// <summary>Peak learning rate after the scaling rule.</summary>
    public double ScaledLr => Optim.ScalingRule switch
    {
        LearningRateScalingRule.SqrtWrt1024 => LearningRateScaling.SqrtWrt1024(Optim.BaseLr, BatchSize, DataParallelReplicas),
        LearningRateScalingRule.LinearWrt1024 => Optim.BaseLr * BatchSize * DataParallelReplicas / 1024.0,
        _ => Optim.BaseLr,
    };

    public SslScheduleOptions ScheduleOptions() => new()
    {
        Lr = ScaledLr,
        MinLr = Optim.MinLr,
        Epochs = Epochs,
        WarmupEpochs = Optim.WarmupEpochs,
        WeightDecay = Optim.WeightDecay,
        WeightDecayEnd = Optim.WeightDecayEnd,
        MomentumTeacher = Teacher.MomentumTeacher,
        FinalMomentumTeacher = Teacher.FinalMomentumTeacher,
        TeacherTemp = Teacher.TeacherTemp,
        WarmupTeacherTemp = Teacher.WarmupTeacherTemp,
        WarmupTeacherTempEpochs = Teacher.WarmupTeacherTempEpochs,
        FreezeLastLayerEpochs = Optim.FreezeLastLayerEpochs,
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Backbone);
        Backbone.Validate();
        if (Epochs < 1) throw new ArgumentException($"Epochs must be at least 1, got {Epochs}.");
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1, got {BatchSize}.");
        if (DataParallelReplicas < 1) throw new ArgumentException($"DataParallelReplicas must be at least 1, got {DataParallelReplicas}.");
        if (GpuIds.Count > 0 && GpuIds.Count != DataParallelReplicas)
            throw new ArgumentException($"train.gpu_ids lists {GpuIds.Count} GPU(s) but train.num_gpus is {DataParallelReplicas}.");
        if (GpuIds.Any(id => id < 0) || GpuIds.Distinct().Count() != GpuIds.Count)
            throw new ArgumentException($"train.gpu_ids must list distinct CUDA device numbers (0 or more), got [{string.Join(", ", GpuIds)}].");
        if (Seed < 0) throw new ArgumentException($"Seed must not be negative, got {Seed}.");
        if (Head.NumLayers < 1 || Head.HiddenDim < 1 || Head.BottleneckDim < 1 || Head.NumPrototypes < 1)
            throw new ArgumentException($"Head sizes must be positive, got {Head}.");
        if (Optim.WarmupEpochs < 0 || Optim.WarmupEpochs > Epochs)
            throw new ArgumentException($"WarmupEpochs must be in [0, Epochs = {Epochs}], got {Optim.WarmupEpochs}.");
        if (Optim.ClipGradNorm < 0) throw new ArgumentException($"ClipGradNorm must not be negative, got {Optim.ClipGradNorm}.");
        if (Loss.DinoLossWeight < 0 || Loss.IbotLossWeight < 0 || Loss.KoleoLossWeight < 0)
            throw new ArgumentException($"Loss weights must not be negative, got {Loss}.");
    }
}
