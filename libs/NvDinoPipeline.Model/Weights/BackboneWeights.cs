using System.Text.Json;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Weights;

/// <summary>
/// Loads backbone weights from .pth, .ckpt or .safetensors files, under DINOv2's names or TAO's (timm's), and saves them
/// as safetensors under DINOv2's names.
/// </summary>
public static partial class BackboneWeights
{
    /// <summary>Safetensors metadata key holding the <see cref="BackboneConfig"/> as JSON.</summary>
    public const string ConfigMetadataKey = "nvdino.backbone_config";

    private static readonly JsonSerializerOptions ConfigJson = new()
    {
        WriteIndented = false,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    public static LoadReport Load(VisionTransformer model, string path, LoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new LoadOptions();
        using var checkpoint = TensorCheckpoint.Open(path, options.Read);
        return Load(model, checkpoint, options);
    }

    public static LoadReport Load(VisionTransformer model, TensorCheckpoint checkpoint, LoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(checkpoint);
        options ??= new LoadOptions();

        var prefix = options.KeyPrefix ?? DetectPrefix(checkpoint);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var byModelKey = new Dictionary<string, string>(StringComparer.Ordinal);
        var ignored = 0;
        // TAO's backbone is timm's VisionTransformer with a GluMlp(gate_last=False): its mlp.fc1 / mlp.fc2 are DINOv2's
        // mlp.w12 / mlp.w3, halves in the same order (both compute fc2(silu(x1) * x2) with x1, x2 = fc1(x).chunk(2)).
        // Only a SwiGLU backbone is remapped: in DINOv2's plain "mlp" FFN, fc1 / fc2 are the real names.
        var swiGlu = model.Config.FfnLayer == FfnLayer.SwiGlu;
        var timmNamed = false;
        foreach (var key in checkpoint.Entries.Keys)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal))
            {
                ignored++;
                continue;
            }
            var stripped = UnchunkBlockKey(key[prefix.Length..]);
            if (swiGlu && TimmSwiGluKey().Match(stripped) is { Success: true } timm)
            {
                // Plain-MLP weights also say fc1 / fc2: rename only tensors shaped like this SwiGLU's, so those stay
                // reported as missing and unexpected keys rather than as a shape mismatch.
                var renamed = $"{timm.Groups[1].Value}mlp.{(timm.Groups[2].Value == "fc1" ? "w12" : "w3")}.{timm.Groups[3].Value}";
                if (parameters.TryGetValue(renamed, out var target) && checkpoint.Entries[key].Shape.SequenceEqual(target.shape))
                {
                    stripped = renamed;
                    timmNamed = true;
                }
            }
            byModelKey.TryAdd(stripped, key);
        }

        var loaded = new List<string>();
        var missing = new List<string>();
        var interpolated = new List<string>();
        var unexpected = byModelKey.Keys.Where(k => !parameters.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();

        // Check every shape before changing any parameter, so a failed load leaves the model as it was.
        var plan = new List<(string Name, TorchSharp.Modules.Parameter Parameter, string Key)>();
        foreach (var (name, parameter) in parameters)
        {
            if (!byModelKey.TryGetValue(name, out var key))
            {
                missing.Add(name);
                continue;
            }
            var shape = checkpoint.Entries[key].Shape;
            if (!shape.SequenceEqual(parameter.shape) && !(name == "pos_embed" && options.InterpolatePositionEmbedding
                                                           && CanResamplePositions(shape, parameter.shape)))
                throw new TensorShapeMismatchException(key, shape, parameter.shape);
            plan.Add((name, parameter, key));
        }

        if (options.Strict && (missing.Count > 0 || unexpected.Count > 0))
            throw new InvalidDataException(
                $"Checkpoint '{checkpoint.Path}' does not match the backbone exactly (prefix '{prefix}'). " +
                $"Missing: [{string.Join(", ", missing)}]. Unexpected: [{string.Join(", ", unexpected)}].");

        var totalElements = parameters.Values.Sum(p => p.numel());
        var loadedElements = plan.Sum(p => p.Parameter.numel());
        var fraction = totalElements == 0 ? 1.0 : (double)loadedElements / totalElements;
        if (missing.Count > 0 && !options.AllowPartial)
            throw new IncompleteCheckpointException(checkpoint.Path, prefix, fraction, missing);

        using (no_grad())
        {
            foreach (var (name, parameter, key) in plan)
            {
                using var scope = NewDisposeScope();
                var value = checkpoint.Read(key);
                if (!value.shape.SequenceEqual(parameter.shape))
                {
                    var fromGrid = (long)Math.Round(Math.Sqrt(value.shape[1] - 1));
                    var toGrid = model.Config.GridSize;
                    value = PositionEmbedding.Interpolate(value, toGrid, toGrid, model.Config.InterpolateOffset, model.Config.InterpolateAntialias);
                    interpolated.Add($"{name}: {fromGrid}x{fromGrid} grid resampled to {toGrid}x{toGrid}");
                }
                parameter.copy_(value);
                loaded.Add(name);
            }
        }

        return new LoadReport
        {
            Path = checkpoint.Path,
            Format = checkpoint.Format,
            KeyPrefix = prefix,
            KeyNaming = timmNamed ? KeyNaming.Tao : KeyNaming.DinoV2,
            LoadedParameterFraction = fraction,
            Loaded = loaded,
            Missing = missing,
            Unexpected = unexpected,
            Interpolated = interpolated,
            IgnoredOutsidePrefix = ignored,
        };
    }

    /// <summary>Saves the backbone's parameters under their DINOv2 names, with its config in the metadata.</summary>
    public static void Save(VisionTransformer model, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var allMetadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (metadata is not null)
        {
            foreach (var (key, value) in metadata)
                allMetadata[key] = value;
        }
        allMetadata[ConfigMetadataKey] = JsonSerializer.Serialize(model.Config, ConfigJson);
        var tensors = model.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter));
        SafeTensors.Save(path, tensors, allMetadata);
    }

    /// <summary>The backbone config stored by <see cref="Save"/>, or null when the file carries none.</summary>
    public static BackboneConfig? ReadConfig(string path)
    {
        var metadata = SafeTensors.ReadMetadata(path);
        if (!metadata.TryGetValue(ConfigMetadataKey, out var json))
            return null;
        try
        {
            var config = JsonSerializer.Deserialize<BackboneConfig>(json, ConfigJson)
                         ?? throw new InvalidDataException($"Checkpoint '{path}' has an empty backbone config.");
            config.Validate();
            return config;
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException)
        {
            throw new InvalidDataException($"Checkpoint '{path}' has an unreadable backbone config: {ex.Message}", ex);
        }
    }

    private static bool CanResamplePositions(long[] checkpointShape, long[] modelShape)
    {
        if (checkpointShape.Length != 3 || checkpointShape[0] != 1 || checkpointShape[2] != modelShape[2])
            return false;
        var side = (long)Math.Round(Math.Sqrt(checkpointShape[1] - 1));
        return side > 0 && side * side == checkpointShape[1] - 1;
    }

    // DINOv2 trains with block_chunks > 0, which nests blocks as blocks.<chunk>.<index>.*, index counted globally.
    private static string UnchunkBlockKey(string key)
    {
        var match = ChunkedBlockKey().Match(key);
        return match.Success ? $"blocks.{match.Groups[2].Value}.{match.Groups[3].Value}" : key;
    }

    private static string DetectPrefix(TensorCheckpoint checkpoint)
    {
        const string anchor = "pos_embed";
        var candidates = checkpoint.Entries.Keys
            .Where(k => k.EndsWith(anchor, StringComparison.Ordinal))
            .Select(k => k[..^anchor.Length])
            .Where(p => p.Length == 0 || p.EndsWith('.'))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (candidates.Count <= 1)
            return candidates.SingleOrDefault() ?? "";

        var teacher = candidates.Where(p => p.Contains("teacher", StringComparison.OrdinalIgnoreCase)).ToList();
        if (teacher.Count == 1)
            return teacher[0];
        throw new InvalidDataException(
            $"Checkpoint '{checkpoint.Path}' holds several backbones ({string.Join(", ", candidates.Select(c => $"'{c}'"))}); " +
            $"choose one with {nameof(LoadOptions)}.{nameof(LoadOptions.KeyPrefix)}.");
    }

    [GeneratedRegex(@"^blocks\.(\d+)\.(\d+)\.(.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex ChunkedBlockKey();

    [GeneratedRegex(@"^(blocks\.\d+\.)mlp\.(fc1|fc2)\.(weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex TimmSwiGluKey();
}
