using System.Text.Json;
using System.Text.Json.Serialization;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Core.Checkpoints;

/// <summary>
/// A training checkpoint is one safetensors file (any extension; <c>.ckpt</c> by convention) holding
/// <c>student.*</c> and <c>teacher.*</c> networks (DINOv2 names: <c>teacher.backbone.blocks.0.attn.qkv.weight</c>),
/// loss centers, AdamW moments (<c>optimizer.&lt;student parameter&gt;.exp_avg</c> / <c>.exp_avg_sq</c>, step counts in
/// <c>optimizer.step_counts</c>), the run's <see cref="TrainingState"/> as JSON metadata and the backbone config under
/// <see cref="BackboneWeights.ConfigMetadataKey"/>. <see cref="BackboneWeights.Load(VisionTransformer, string, LoadOptions?)"/>
/// reads the teacher backbone straight from it, and <see cref="BackboneWeights.ReadConfig"/> its architecture.
/// </summary>
public static class TrainingCheckpointFile
{
    public const string StateMetadataKey = "nvdino.training_state";
    public const string OptimizerPrefix = "optimizer.";
    public const string StepCountsKey = "optimizer.step_counts";

    private static readonly JsonSerializerOptions StateJson = new(JsonSerializerDefaults.Web);

    // The same shape BackboneWeights.Save writes, so BackboneWeights.ReadConfig reads it back.
    private static readonly JsonSerializerOptions ConfigJson = new()
    {
        WriteIndented = false,
        Converters = { new JsonStringEnumConverter() },
    };

    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, TrainingState state, BackboneConfig backbone)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(backbone);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt",
            [StateMetadataKey] = JsonSerializer.Serialize(state, StateJson),
            [BackboneWeights.ConfigMetadataKey] = JsonSerializer.Serialize(backbone, ConfigJson),
        };
        SafeTensors.Save(path, tensors, metadata);
    }

    /// <summary>The run state stored in a checkpoint, without reading its tensors.</summary>
    /// <exception cref="InvalidDataException">The file is not a training checkpoint.</exception>
    public static TrainingState ReadState(string path)
    {
        IReadOnlyDictionary<string, string> metadata;
        try
        {
            metadata = SafeTensors.ReadMetadata(path);
        }
        catch (Exception exception) when (exception is InvalidDataException or JsonException or EndOfStreamException)
        {
            throw new InvalidDataException($"'{path}' is not a training checkpoint: {exception.Message}", exception);
        }
        if (!metadata.TryGetValue(StateMetadataKey, out var json))
            throw new InvalidDataException($"'{path}' is not a training checkpoint: it has no '{StateMetadataKey}' metadata (a backbone-only weights file?).");
        try
        {
            var state = JsonSerializer.Deserialize<TrainingState>(json, StateJson)
                ?? throw new InvalidDataException($"'{path}' has an empty training state.");
            if (state.Version > TrainingState.CurrentVersion)
                throw new InvalidDataException($"'{path}' is a version {state.Version} training checkpoint; this build reads up to version {TrainingState.CurrentVersion}.");
            return state;
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"'{path}' has an unreadable training state: {exception.Message}", exception);
        }
    }

    /// <summary>True when <paramref name="path"/> holds a training checkpoint this build can read.</summary>
    public static bool IsTrainingCheckpoint(string path)
    {
        try
        {
            ReadState(path);
            return true;
        }
        catch (Exception exception) when (exception is InvalidDataException or IOException or ArgumentException)
        {
            return false;
        }
    }
}
