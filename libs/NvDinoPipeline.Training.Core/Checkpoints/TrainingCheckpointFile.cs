using System.Text.Json;
using System.Text.Json.Serialization;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using static TorchSharp.torch;
using NvDinoPipeline.Checkpoints;

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
    public const string StateMetadataKey = TrainingState.MetadataKey;
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

    /// <summary>
    /// Writes a trainer's whole state: its networks and loss centers (<paramref name="tensors"/>), the AdamW moments
    /// and step counts of <paramref name="optimizer"/> (named by parameter) and <paramref name="state"/>, whose
    /// optimizer parameter list is filled in here.
    /// </summary>
    public static void WriteWithOptimizer(string path, IEnumerable<(string Key, Tensor Tensor)> tensors,
        IReadOnlyList<(string Name, TorchSharp.Modules.AdamW.State State)> optimizer, TrainingState state, BackboneConfig backbone)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(optimizer);
        using var scope = NewDisposeScope();
        var all = tensors.Select(t => new KeyValuePair<string, Tensor>(t.Key, t.Tensor)).ToList();
        var steps = new long[optimizer.Count];
        for (var i = 0; i < optimizer.Count; i++)
        {
            var (name, adam) = optimizer[i];
            all.Add(new($"{OptimizerPrefix}{name}.exp_avg", adam.exp_avg));
            all.Add(new($"{OptimizerPrefix}{name}.exp_avg_sq", adam.exp_avg_sq));
            steps[i] = adam.step;
        }
        all.Add(new(StepCountsKey, TorchSharp.torch.tensor(steps)));
        Write(path, all, state with { OptimizerParameters = optimizer.Select(o => o.Name).ToList() }, backbone);
    }

    /// <summary>
    /// Restores what <see cref="WriteWithOptimizer"/> wrote into <paramref name="tensors"/> and <paramref name="optimizer"/>.
    /// Every tensor is checked before any is changed, so a failed load leaves the trainer as it was.
    /// </summary>
    /// <param name="kind">The <see cref="TrainingState.Kind"/> the caller writes; <paramref name="kindName"/> says it in words.</param>
    /// <exception cref="InvalidDataException">Not a checkpoint of this kind, other optimizer parameters, or a tensor is missing.</exception>
    /// <exception cref="TensorShapeMismatchException">A tensor does not fit the caller's architecture.</exception>
    public static TrainingState Restore(string path, string kind, string kindName, IEnumerable<(string Key, Tensor Target)> tensors,
        IReadOnlyList<(string Name, TorchSharp.Modules.AdamW.State State)> optimizer)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(optimizer);
        var state = ReadState(path);
        if (state.Kind != kind)
            throw new InvalidDataException($"'{path}' is a '{state.Kind}' checkpoint, not a {kindName} checkpoint ('{kind}').");
        using var checkpoint = TensorCheckpoint.Open(path);

        var plan = tensors.ToList();
        var optimizerNames = optimizer.Select(s => s.Name).ToList();
        if (!optimizerNames.SequenceEqual(state.OptimizerParameters))
            throw new InvalidDataException(
                $"'{path}' holds optimizer state for other parameters than this {kindName}'s ({state.OptimizerParameters.Count} vs {optimizerNames.Count}; " +
                $"first difference: '{state.OptimizerParameters.Except(optimizerNames).Concat(optimizerNames.Except(state.OptimizerParameters)).FirstOrDefault()}').");
        foreach (var (name, adam) in optimizer)
        {
            plan.Add(($"{OptimizerPrefix}{name}.exp_avg", adam.exp_avg));
            plan.Add(($"{OptimizerPrefix}{name}.exp_avg_sq", adam.exp_avg_sq));
        }
        foreach (var (key, target) in plan)
        {
            if (!checkpoint.Entries.TryGetValue(key, out var entry))
                throw new InvalidDataException($"Checkpoint '{path}' has no tensor '{key}'.");
            if (!entry.Shape.SequenceEqual(target.shape))
                throw new TensorShapeMismatchException(key, entry.Shape, target.shape);
        }
        if (!checkpoint.Entries.ContainsKey(StepCountsKey))
            throw new InvalidDataException($"Checkpoint '{path}' has no tensor '{StepCountsKey}'.");

        using (no_grad())
        {
            foreach (var (key, target) in plan)
            {
                using var value = checkpoint.Read(key);
                target.copy_(value);
            }
            using var counts = checkpoint.Read(StepCountsKey);
            var steps = counts.data<long>().ToArray();
            for (var i = 0; i < optimizer.Count; i++)
                optimizer[i].State.step = steps[i];
        }
        return state;
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
