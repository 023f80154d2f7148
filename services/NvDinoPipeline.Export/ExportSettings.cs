using System.Globalization;
using NvDinoPipeline.Checkpoints;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model;
using NvDinoPipeline.Specs;

namespace NvDinoPipeline.Export;

/// <summary>The <c>export.*</c> keys of a job's spec (TAO's <c>nvdinov2 export</c>), checked before any work starts.</summary>
public sealed record ExportSettings
{
    public const string DefaultOnnxFile = "model.onnx";

    public required CheckpointSelection Checkpoint { get; init; }

    /// <summary><c>export.onnx_file</c>: null writes <c>model.onnx</c> into the job folder.</summary>
    public string? OnnxFile { get; init; }

    public int Opset { get; init; } = 17;

    /// <summary>-1 exports a dynamic batch axis.</summary>
    public int BatchSize { get; init; } = -1;

    public required int InputHeight { get; init; }

    public required int InputWidth { get; init; }

    public bool DynamicHeightWidth { get; init; }

    public bool IncludePatchTokens { get; init; }

    /// <summary>
    /// The architecture the spec says the exported network has (<c>model.backbone.*</c>: the teacher after training,
    /// the student after distillation); null when the spec has no model section.
    /// </summary>
    public BackboneConfig? ExpectedBackbone { get; init; }

    /// <summary>The spec key naming <see cref="ExpectedBackbone"/>'s type.</summary>
    public string? ExpectedBackboneKey { get; init; }

    public bool DynamicBatch => BatchSize == -1;

    /// <summary>Reads the export keys of a validated spec; a missing key is a <see cref="StageInputException"/> naming it.</summary>
    public static ExportSettings Read(ResolvedSpec spec, PipelineStage sourceStage)
    {
        ArgumentNullException.ThrowIfNull(spec);
        // The values were checked by the spec rules when the pipeline started (SpecRules); here they are only read.
        var typeKey = sourceStage == PipelineStage.Distillation ? "model.backbone.student_type" : "model.backbone.teacher_type";
        return new ExportSettings
        {
            Checkpoint = ReadCheckpoint(spec),
            OnnxFile = Get<string?>(spec, "export.onnx_file") is { Length: > 0 } file ? file : null,
            Opset = Get<int>(spec, "export.opset_version"),
            BatchSize = Get<int>(spec, "export.batch_size"),
            InputHeight = Get<int>(spec, "export.input_height"),
            InputWidth = Get<int>(spec, "export.input_width"),
            DynamicHeightWidth = Get<bool>(spec, "export.dynamic_hw"),
            IncludePatchTokens = Get<bool>(spec, "export.include_patch_tokens"),
            ExpectedBackbone = ReadBackbone(spec, typeKey),
            ExpectedBackboneKey = typeKey,
        };
    }

    /// <summary>The spec key choosing the exported checkpoint.</summary>
    public const string CheckpointKey = "export.checkpoint";

    private static CheckpointSelection ReadCheckpoint(ResolvedSpec spec)
    {
        try
        {
            return CheckpointSelection.Parse(CheckpointKey, Get<string>(spec, CheckpointKey) ?? "");
        }
        catch (CheckpointChoiceException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }

    /// <summary>The backbone a training spec describes, or null when the spec has no <c>model.backbone</c> section.</summary>
    private static BackboneConfig? ReadBackbone(ResolvedSpec spec, string typeKey)
    {
        if (!spec.TryGet<string>(typeKey, out var type))
        {
            return null;
        }
        try
        {
            FfnLayer? ffn = spec.TryGet<string>("model.backbone.ffn_layer", out var ffnName)
                ? ffnName switch
                {
                    "swiglu" or "swiglufused" => FfnLayer.SwiGlu,
                    "mlp" => FfnLayer.Mlp,
                    _ => throw new ArgumentException($"model.backbone.ffn_layer '{ffnName}' is neither mlp nor swiglu."),
                }
                : null;
            var config = BackboneConfig.FromName(
                type,
                spec.TryGet<int>("model.backbone.patch_size", out var patch) ? patch : 14,
                spec.TryGet<int>("model.backbone.img_size", out var img) ? img : 518,
                ffn,
                spec.TryGet<int>("model.backbone.num_register_tokens", out var registers) ? registers : 0,
                spec.ContainsKey("model.backbone.layerscale_init") ? spec.Get<double?>("model.backbone.layerscale_init") : 1e-5);
            return config with
            {
                InterpolateOffset = spec.TryGet<double>("model.backbone.interpolate_offset", out var offset) ? offset : config.InterpolateOffset,
                InterpolateAntialias = spec.TryGet<bool>("model.backbone.interpolate_antialias", out var antialias) && antialias,
            };
        }
        catch (Exception exception) when (exception is ArgumentException or InvalidCastException)
        {
            throw new StageInputException($"The spec's model.backbone section does not describe a backbone: {exception.Message}", exception);
        }
    }

    private static T Get<T>(ResolvedSpec spec, string key)
    {
        try
        {
            return spec.Get<T>(key);
        }
        catch (Exception exception) when (exception is KeyNotFoundException or InvalidCastException)
        {
            throw new StageInputException($"The export spec cannot be used: {exception.Message}", exception);
        }
    }
}
