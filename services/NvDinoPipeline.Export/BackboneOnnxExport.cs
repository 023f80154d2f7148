using NvDinoPipeline.Model;
using NvDinoPipeline.Onnx;
using static TorchSharp.torch;

namespace NvDinoPipeline.Export;

/// <summary>From a TorchSharp backbone to the inputs of the ONNX writer: graph config, weights and export options.</summary>
public static class BackboneOnnxExport
{
    public static VitGraphConfig GraphConfig(BackboneConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new VitGraphConfig
        {
            EmbedDim = config.EmbedDim,
            Depth = config.Depth,
            NumHeads = config.NumHeads,
            PatchSize = config.PatchSize,
            ImageSize = config.ImgSize,
            InChannels = config.InChannels,
            NumRegisterTokens = config.NumRegisterTokens,
            Ffn = config.FfnLayer == FfnLayer.SwiGlu ? VitFfnKind.SwiGlu : VitFfnKind.Mlp,
            LayerNormEpsilon = VisionTransformer.LayerNormEpsilon,
            InterpolateOffset = config.InterpolateOffset,
            InterpolateAntialias = config.InterpolateAntialias,
        };
    }

    /// <summary>Copies every parameter of <paramref name="model"/> out of TorchSharp as float32, under its DINOv2 name.</summary>
    public static Dictionary<string, NamedWeight> Weights(VisionTransformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var weights = new Dictionary<string, NamedWeight>(StringComparer.Ordinal);
        foreach (var (name, parameter) in model.named_parameters())
        {
            using var scope = NewDisposeScope();
            var values = parameter.detach().to(ScalarType.Float32, CPU).contiguous();
            weights[name] = new NamedWeight(values.data<float>().ToArray(), [.. parameter.shape]);
        }
        return weights;
    }

    public static VitExportOptions Options(ExportSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return new VitExportOptions
        {
            Opset = settings.Opset,
            BatchSize = settings.BatchSize,
            Height = settings.DynamicHeightWidth ? null : settings.InputHeight,
            Width = settings.DynamicHeightWidth ? null : settings.InputWidth,
            DynamicHeightWidth = settings.DynamicHeightWidth,
            IncludePatchTokens = settings.IncludePatchTokens,
        };
    }
}
