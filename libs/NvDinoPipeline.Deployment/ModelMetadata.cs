using System.Text.Json;
using System.Text.Json.Serialization;

namespace NvDinoPipeline.Deployment;

/// <summary>
/// Written by export beside <c>model.onnx</c> (<c>model.json</c>); read by engine generation and
/// inference, so every stage feeds the model exactly the input it was exported for.
/// </summary>
public sealed record ModelMetadata
{
    public const string CurrentFormat = "nvdino.model/1";

    public string Format { get; init; } = CurrentFormat;

    /// <summary>File name of the ONNX model, relative to the metadata file.</summary>
    public required string OnnxFile { get; init; }

    public required int Opset { get; init; }

    public required TensorDescription Input { get; init; }

    /// <summary><c>output</c> (normalised CLS embedding [B,D]) first; optionally <c>patch_tokens</c>.</summary>
    public required IReadOnlyList<TensorDescription> Outputs { get; init; }

    public required bool DynamicBatch { get; init; }

    /// <summary>True when any height and width that are multiples of the patch size are accepted.</summary>
    public required bool DynamicHeightWidth { get; init; }

    public required Preprocessing Preprocessing { get; init; }

    public required BackboneDescription Backbone { get; init; }

    public ParityReport? Parity { get; init; }

    public SourceCheckpoint? Source { get; init; }

    public int EmbeddingDimension => (int)Outputs[0].Shape[^1];

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a metadata file; the message names the file and what is wrong with it.</summary>
    public static ModelMetadata FromJson(string json, string source)
    {
        ModelMetadata? metadata;
        try
        {
            metadata = JsonSerializer.Deserialize<ModelMetadata>(json, Json);
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"Model metadata '{source}' is not valid JSON: {exception.Message}", exception);
        }
        if (metadata is null)
        {
            throw new InvalidDataException($"Model metadata '{source}' is empty.");
        }
        if (metadata.Format != CurrentFormat)
        {
            throw new InvalidDataException($"Model metadata '{source}' has format '{metadata.Format}'; this version reads '{CurrentFormat}'.");
        }
        if (metadata.Outputs.Count == 0 || metadata.Input.Shape.Count != 4)
        {
            throw new InvalidDataException($"Model metadata '{source}' must describe a [B,3,H,W] input and at least one output.");
        }
        return metadata;
    }
}

/// <summary>A graph input or output; -1 marks a dynamic dimension.</summary>
public sealed record TensorDescription(string Name, IReadOnlyList<long> Shape, string ElementType = "float32");

/// <summary>
/// How an RGB image becomes the model's input: resized to <see cref="Height"/>×<see cref="Width"/>
/// (bilinear, pixel centres aligned), scaled to [0,1], normalised per channel, laid out CHW.
/// </summary>
public sealed record Preprocessing
{
    public required int Height { get; init; }

    public required int Width { get; init; }

    public IReadOnlyList<float> Mean { get; init; } = [0.485f, 0.456f, 0.406f];

    public IReadOnlyList<float> Std { get; init; } = [0.229f, 0.224f, 0.225f];

    public string Resize { get; init; } = "bilinear";

    public string ChannelOrder { get; init; } = "rgb";
}

public sealed record BackboneDescription
{
    /// <summary><c>vit_s</c>, <c>vit_b</c>, …</summary>
    public required string Type { get; init; }

    public required int PatchSize { get; init; }

    public required int EmbedDim { get; init; }

    public required int Depth { get; init; }

    public required int NumHeads { get; init; }

    public int NumRegisterTokens { get; init; }

    public long Parameters { get; init; }

    /// <summary>The image side the position embeddings were trained at.</summary>
    public required int TrainedImageSize { get; init; }

    /// <summary><c>mlp</c> or <c>swiglu</c>; null in metadata written before it was recorded.</summary>
    public string? FfnLayer { get; init; }

    /// <summary>Feed-forward width over embedding width; null in metadata written before it was recorded.</summary>
    public double? MlpRatio { get; init; }

    /// <summary>True when the blocks have LayerScale; null in metadata written before it was recorded.</summary>
    public bool? LayerScale { get; init; }
}

/// <summary>ONNX Runtime against the TorchSharp model on the same inputs.</summary>
public sealed record ParityReport
{
    public required double MaxAbsError { get; init; }

    public required double MinCosine { get; init; }

    public required IReadOnlyList<ParityCheck> Checks { get; init; }
}

public sealed record ParityCheck(int Batch, int Height, int Width, double MaxAbsError, double MinCosine);

public sealed record SourceCheckpoint(string Uri, string Sha256, string? Selection = null);
