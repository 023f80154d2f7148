namespace NvDinoPipeline.Ssl.Schedules;

/// <summary>The values every schedule takes at one iteration.</summary>
public readonly record struct SslScheduleValues(double Lr, double WeightDecay, double TeacherMomentum, double TeacherTemp, double LastLayerLr);

/// <summary>The five schedules of DINOv2's <c>build_schedulers</c> (<c>train/train.py</c>).</summary>
public sealed class SslSchedules
{
    private SslSchedules(CosineScheduler lr, CosineScheduler weightDecay, CosineScheduler teacherMomentum, CosineScheduler teacherTemp, CosineScheduler lastLayerLr)
    {
        Lr = lr;
        WeightDecay = weightDecay;
        TeacherMomentum = teacherMomentum;
        TeacherTemp = teacherTemp;
        LastLayerLr = lastLayerLr;
    }

    /// <summary>Warm-up from 0, then cosine to <c>MinLr</c>.</summary>
    public CosineScheduler Lr { get; }

    /// <summary>Cosine from <c>WeightDecay</c> to <c>WeightDecayEnd</c> (rising).</summary>
    public CosineScheduler WeightDecay { get; }

    /// <summary>Cosine from <c>MomentumTeacher</c> to <c>FinalMomentumTeacher</c>.</summary>
    public CosineScheduler TeacherMomentum { get; }

    /// <summary>Linear warm-up from <c>WarmupTeacherTemp</c> to <c>TeacherTemp</c>, then constant.</summary>
    public CosineScheduler TeacherTemp { get; }

    /// <summary>The learning-rate schedule with its first <c>FreezeLastLayerEpochs</c> epochs at 0.</summary>
    public CosineScheduler LastLayerLr { get; }

    public static SslSchedules Create(SslScheduleOptions options, long iterationsPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (iterationsPerEpoch <= 0) throw new ArgumentOutOfRangeException(nameof(iterationsPerEpoch), iterationsPerEpoch, "must be positive");
        if (options.Epochs <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.Epochs, "Epochs must be positive");
        if (options.WarmupEpochs < 0 || options.WarmupEpochs > options.Epochs)
            throw new ArgumentOutOfRangeException(nameof(options), options.WarmupEpochs, $"WarmupEpochs must be in [0, Epochs = {options.Epochs}]");
        if (options.WarmupTeacherTempEpochs < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.WarmupTeacherTempEpochs, "WarmupTeacherTempEpochs must not be negative");
        if (options.FreezeLastLayerEpochs < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.FreezeLastLayerEpochs, "FreezeLastLayerEpochs must not be negative");

        var total = options.Epochs * iterationsPerEpoch;
        var lr = new CosineScheduler(options.Lr, options.MinLr, total, options.WarmupEpochs * iterationsPerEpoch, startWarmupValue: 0);
        var wd = new CosineScheduler(options.WeightDecay, options.WeightDecayEnd, total);
        var momentum = new CosineScheduler(options.MomentumTeacher, options.FinalMomentumTeacher, total);
        var tempIters = options.WarmupTeacherTempEpochs * iterationsPerEpoch;
        var teacherTemp = new CosineScheduler(options.TeacherTemp, options.TeacherTemp, tempIters, tempIters, options.WarmupTeacherTemp);
        var lastLayerLr = lr.WithZeroedPrefix(options.FreezeLastLayerEpochs * iterationsPerEpoch);
        return new SslSchedules(lr, wd, momentum, teacherTemp, lastLayerLr);
    }

    public SslScheduleValues At(long iteration) =>
        new(Lr[iteration], WeightDecay[iteration], TeacherMomentum[iteration], TeacherTemp[iteration], LastLayerLr[iteration]);
}
