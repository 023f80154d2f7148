namespace NvDinoPipeline.Model.Weights;

/// <summary>How <see cref="BackboneWeights.Load(VisionTransformer, string, LoadOptions?)"/> maps checkpoint keys onto a backbone.</summary>
public sealed record LoadOptions
{
    /// <summary>
    /// Prefix in front of the backbone keys, e.g. "teacher.backbone." or "model.student.backbone.". Null detects it from
    /// where pos_embed sits, preferring the teacher when a checkpoint holds both teacher and student.
    /// </summary>
    public string? KeyPrefix { get; init; }

    /// <summary>Throw when a model parameter is missing from the checkpoint or a backbone key is unknown to the model.</summary>
    public bool Strict { get; init; }

    /// <summary>
    /// Accept a checkpoint that provides only part of the backbone, leaving the rest at its current values. When false
    /// (the default) a missing parameter is an <see cref="IncompleteCheckpointException"/> and nothing is changed.
    /// </summary>
    public bool AllowPartial { get; init; }

    /// <summary>Resample pos_embed trained for another grid to the model's grid (bicubic, as at run time).</summary>
    public bool InterpolatePositionEmbedding { get; init; } = true;

    public CheckpointReadOptions Read { get; init; } = new();
}

/// <summary>What a weights load did: which parameters were set, which were left alone, what was adapted.</summary>
public sealed record LoadReport
{
    public required string Path { get; init; }
    public required CheckpointFormat Format { get; init; }

    /// <summary>Prefix stripped from checkpoint keys ("" when none).</summary>
    public required string KeyPrefix { get; init; }

    /// <summary>Whose parameter names the checkpoint uses.</summary>
    public required KeyNaming KeyNaming { get; init; }

    /// <summary>Share of the backbone's parameter elements set from the checkpoint, 0 to 1.</summary>
    public required double LoadedParameterFraction { get; init; }

    /// <summary>Model parameters set from the checkpoint.</summary>
    public required IReadOnlyList<string> Loaded { get; init; }

    /// <summary>Model parameters the checkpoint does not provide; they keep their current values.</summary>
    public required IReadOnlyList<string> Missing { get; init; }

    /// <summary>Checkpoint keys under the prefix (prefix stripped) that the model has no parameter for.</summary>
    public required IReadOnlyList<string> Unexpected { get; init; }

    /// <summary>Parameters that were adapted, e.g. "pos_embed: 37x37 grid resampled to 16x16".</summary>
    public required IReadOnlyList<string> Interpolated { get; init; }

    /// <summary>Checkpoint tensors outside the prefix (heads, the other network, optimizer state).</summary>
    public required int IgnoredOutsidePrefix { get; init; }

    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0;
}

/// <summary>The parameter names a backbone checkpoint uses.</summary>
public enum KeyNaming
{
    /// <summary>facebookresearch/dinov2's (SwiGLU as <c>mlp.w12</c> / <c>mlp.w3</c>); also what this product saves.</summary>
    DinoV2,

    /// <summary>TAO NVDINOv2's, from timm (SwiGLU as <c>mlp.fc1</c> / <c>mlp.fc2</c>).</summary>
    Tao,
}
