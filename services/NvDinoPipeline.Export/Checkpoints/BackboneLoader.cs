using System.Text.Json;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;

namespace NvDinoPipeline.Export.Checkpoints;

/// <summary>
/// Builds the TorchSharp backbone of a checkpoint in eval mode. The architecture comes from the config the file
/// carries (<see cref="BackboneWeights.ConfigMetadataKey"/>), else from the spec; every tensor must fit it exactly.
/// Whatever is wrong with the file becomes a <see cref="StageInputException"/> naming it and the problem.
/// </summary>
public static class BackboneLoader
{
    public static VisionTransformer Load(SelectedCheckpoint checkpoint, PipelineStage sourceStage, ExportSettings settings)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(settings);
        var what = $"Checkpoint '{checkpoint.Uri}' ({checkpoint.Describe()})";
        TensorCheckpoint file;
        try
        {
            file = TensorCheckpoint.Open(checkpoint.LocalPath);
        }
        catch (FileNotFoundException exception)
        {
            throw new StageInputException($"{what} does not exist.", exception);
        }
        catch (Exception exception) when (IsUnreadable(exception))
        {
            throw new StageInputException($"{what} is truncated or corrupt: {exception.Message}", exception);
        }

        using (file)
        {
            var prefix = ChoosePrefix(file, sourceStage, what);
            var config = ReadConfig(file, settings, what) with { DropPathRate = 0 };
            VisionTransformer model;
            try
            {
                model = new VisionTransformer(config);
            }
            catch (ArgumentException exception)
            {
                throw new StageInputException($"{what} describes a backbone that cannot be built: {exception.Message}", exception);
            }

            try
            {
                var report = BackboneWeights.Load(model, file, new LoadOptions { KeyPrefix = prefix, AllowPartial = true });
                if (!report.IsComplete)
                {
                    throw new StageInputException(
                        $"{what} does not hold a {Describe(config)} backbone{(prefix.Length > 0 ? $" under '{prefix}'" : "")}: " +
                        $"{List("missing", report.Missing)}{(report.Missing.Count > 0 && report.Unexpected.Count > 0 ? "; " : "")}{List("unexpected", report.Unexpected)}.");
                }
            }
            catch (TensorShapeMismatchException exception)
            {
                model.Dispose();
                throw new StageInputException($"{what} has the wrong architecture for a {Describe(config)} backbone: {exception.Message}", exception);
            }
            catch (StageInputException)
            {
                model.Dispose();
                throw;
            }
            catch (Exception exception) when (IsUnreadable(exception))
            {
                model.Dispose();
                throw new StageInputException($"{what} is truncated or corrupt: {exception.Message}", exception);
            }
            model.eval();
            return model;
        }
    }

    /// <summary>"vit_s" for DINOv2's sizes; "custom" for any other shape.</summary>
    public static string NameOf(BackboneConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        foreach (var name in BackboneConfig.KnownNames)
        {
            var known = BackboneConfig.FromName(name, config.PatchSize, config.ImgSize);
            if (known.EmbedDim == config.EmbedDim && known.Depth == config.Depth && known.NumHeads == config.NumHeads)
            {
                return name;
            }
        }
        return "custom";
    }

    public static string Describe(BackboneConfig config) =>
        $"{NameOf(config)}/{config.PatchSize} ({config.EmbedDim} wide, {config.Depth} blocks, {config.NumHeads} heads, " +
        $"{(config.FfnLayer == FfnLayer.SwiGlu ? "SwiGLU" : "MLP")}, {config.NumRegisterTokens} register tokens, " +
        $"{(config.LayerScaleInit is null ? "no LayerScale" : "LayerScale")})";

    private static BackboneConfig ReadConfig(TensorCheckpoint file, ExportSettings settings, string what)
    {
        BackboneConfig? stored;
        try
        {
            stored = file.Format == CheckpointFormat.SafeTensors ? BackboneWeights.ReadConfig(file.Path) : null;
        }
        catch (Exception exception) when (IsUnreadable(exception))
        {
            throw new StageInputException($"{what} carries an unreadable backbone config: {exception.Message}", exception);
        }

        var expected = settings.ExpectedBackbone;
        if (stored is null)
        {
            return expected ?? throw new StageInputException(
                $"{what} carries no backbone config ('{BackboneWeights.ConfigMetadataKey}') and the spec has no model.backbone section to take it from.");
        }
        if (expected is not null
            && (expected.EmbedDim, expected.Depth, expected.NumHeads, expected.PatchSize) != (stored.EmbedDim, stored.Depth, stored.NumHeads, stored.PatchSize))
        {
            throw new StageInputException(
                $"{what} has the wrong architecture: it holds a {Describe(stored)} backbone, but the spec's {settings.ExpectedBackboneKey} " +
                $"is {NameOf(expected)}/{expected.PatchSize} ({expected.EmbedDim} wide, {expected.Depth} blocks, {expected.NumHeads} heads).");
        }
        return stored;
    }

    /// <summary>
    /// The key prefix of the backbone to export. A training checkpoint holds the teacher and the student
    /// (TAO exports the teacher); a distillation checkpoint holds the frozen teacher and the student with its EMA
    /// (the EMA is what distillation deploys).
    /// </summary>
    private static string ChoosePrefix(TensorCheckpoint file, PipelineStage sourceStage, string what)
    {
        const string anchor = "pos_embed";
        var candidates = file.Entries.Keys
            .Where(k => k.EndsWith(anchor, StringComparison.Ordinal))
            .Select(k => k[..^anchor.Length])
            .Where(p => p.Length == 0 || p.EndsWith('.'))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        if (candidates.Count == 0)
        {
            throw new StageInputException($"{what} holds no backbone: none of its {file.Entries.Count} tensors is a '{anchor}'.");
        }
        if (candidates.Count == 1)
        {
            return candidates[0];
        }
        var wanted = sourceStage == PipelineStage.Distillation ? "ema" : "teacher";
        var preferred = candidates.Where(p => p.Contains(wanted, StringComparison.OrdinalIgnoreCase)).ToList();
        if (preferred.Count == 1)
        {
            return preferred[0];
        }
        throw new StageInputException(
            $"{what} holds {candidates.Count} backbones ({string.Join(", ", candidates.Select(c => $"'{c}'"))}) and none is clearly the " +
            $"{(sourceStage == PipelineStage.Distillation ? "student EMA" : "teacher")}; export a backbone-only file instead.");
    }

    private static string List(string label, IReadOnlyList<string> keys) =>
        keys.Count == 0 ? "" : $"{keys.Count} {label} tensor(s) [{string.Join(", ", keys.Take(8))}{(keys.Count > 8 ? ", ..." : "")}]";

    private static bool IsUnreadable(Exception exception) =>
        exception is InvalidDataException or EndOfStreamException or JsonException or NotSupportedException
        || (exception is IOException && exception is not FileNotFoundException);
}
