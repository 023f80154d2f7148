namespace NvDinoPipeline.Ssl.Schedules;

/// <summary>Schedule settings, named after DINOv2's <c>optim.*</c> and <c>teacher.*</c> config keys.</summary>
public sealed record SslScheduleOptions
{
    /// <summary>Peak learning rate after warm-up (already scaled, see <see cref="LearningRateScaling"/>).</summary>
    public required double Lr { get; init; }

    /// <summary>Learning rate at the end of the cosine (<c>optim.min_lr</c>).</summary>
    public required double MinLr { get; init; }

    public required int Epochs { get; init; }

    public required int WarmupEpochs { get; init; }

    public required double WeightDecay { get; init; }

    public required double WeightDecayEnd { get; init; }

    /// <summary>Teacher EMA momentum at the start (<c>teacher.momentum_teacher</c>).</summary>
    public required double MomentumTeacher { get; init; }

    public required double FinalMomentumTeacher { get; init; }

    /// <summary>Teacher temperature after warm-up (<c>teacher.teacher_temp</c>).</summary>
    public required double TeacherTemp { get; init; }

    /// <summary>Teacher temperature at iteration 0 (<c>teacher.warmup_teacher_temp</c>).</summary>
    public required double WarmupTeacherTemp { get; init; }

    public required int WarmupTeacherTempEpochs { get; init; }

    /// <summary>Epochs during which the heads' last layer does not learn (<c>optim.freeze_last_layer_epochs</c>).</summary>
    public required int FreezeLastLayerEpochs { get; init; }
}
