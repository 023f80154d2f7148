using System.Globalization;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Checkpoints;

/// <summary>Which checkpoint of a training or distillation job a later stage reads, as TAO's selectors name it.</summary>
public enum CheckpointSelectionKind
{
    /// <summary>What the source job finished with.</summary>
    Latest,

    /// <summary>The end-of-epoch checkpoint with the lowest mean training loss.</summary>
    Best,

    /// <summary>The checkpoint written after a given epoch.</summary>
    Epoch,

    /// <summary>A file named by path or URI.</summary>
    Path,
}

/// <summary>A selector as a spec key (<c>export.checkpoint</c>, <c>distill.teacher_checkpoint</c>) holds it.</summary>
public sealed record CheckpointSelection(string Key, CheckpointSelectionKind Kind, int? Epoch = null, string? Path = null)
{
    public const string Allowed = "latest, best, an epoch number >= 1, or a checkpoint path";

    /// <exception cref="CheckpointChoiceException">The value is empty or names epoch 0.</exception>
    public static CheckpointSelection Parse(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        var text = (value ?? "").Trim();
        if (text.Length == 0)
        {
            throw new CheckpointChoiceException($"{key} is empty; use {Allowed}.");
        }
        if (text.Equals("latest", StringComparison.OrdinalIgnoreCase))
        {
            return new(key, CheckpointSelectionKind.Latest);
        }
        if (text.Equals("best", StringComparison.OrdinalIgnoreCase))
        {
            return new(key, CheckpointSelectionKind.Best);
        }
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var epoch))
        {
            return epoch >= 1
                ? new(key, CheckpointSelectionKind.Epoch, Epoch: epoch)
                : throw new CheckpointChoiceException($"{key} = {text}: epochs are counted from 1.");
        }
        return new(key, CheckpointSelectionKind.Path, Path: text);
    }

    public override string ToString() => Kind switch
    {
        CheckpointSelectionKind.Epoch => $"{Key} = {Epoch}",
        CheckpointSelectionKind.Path => $"{Key} = {Path}",
        _ => $"{Key} = {Kind.ToString().ToLowerInvariant()}",
    };
}

/// <summary>A selector that names no checkpoint of the job; the message names the key, the value and what exists.</summary>
public sealed class CheckpointChoiceException(string message, Exception? innerException = null) : Exception(message, innerException);

/// <summary>The file a selector chose; <see cref="Epoch"/> for an end-of-epoch checkpoint chosen by epoch or loss.</summary>
public sealed record ChosenCheckpoint(Uri Uri, int? Epoch);

/// <summary>
/// The one place a checkpoint is chosen among a job's (export's <c>export.checkpoint</c>, distillation's
/// <c>distill.teacher_checkpoint</c>): latest is what the job finished with; best the end-of-epoch checkpoint of lowest
/// mean training loss (read from the headers only); an epoch its end-of-epoch checkpoint; a path an absolute path, a
/// <c>file://</c> or <c>s3://</c> URI, or a name relative to the job's folder (a bare checkpoint file name such as
/// <c>epoch_003.ckpt</c> is looked up in its <c>checkpoints/</c> folder).
/// </summary>
public static class CheckpointChoice
{
    /// <param name="jobFolder">The source job's artifact folder.</param>
    /// <param name="latest">What the job finished with: the file <c>latest</c> chooses.</param>
    /// <exception cref="CheckpointChoiceException">The selector names no checkpoint of the job.</exception>
    public static async Task<ChosenCheckpoint> ChooseAsync(IArtifactStore store, CheckpointSelection selection, Uri jobFolder, Uri latest,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(selection);
        ArgumentNullException.ThrowIfNull(jobFolder);
        ArgumentNullException.ThrowIfNull(latest);
        var folder = jobFolder.AsFolder();
        var checkpoints = folder.Append(CheckpointNames.Folder);
        switch (selection.Kind)
        {
            case CheckpointSelectionKind.Latest:
                return new ChosenCheckpoint(latest, null);
            case CheckpointSelectionKind.Path:
                return new ChosenCheckpoint(Resolve(selection, folder), null);
        }
        var epochs = (await StoredCheckpoints.ListAsync(store, checkpoints, cancellationToken)).Where(c => c.IsEpochEnd).ToList();
        var available = epochs.Count == 0 ? "none" : string.Join(", ", epochs.Select(e => e.Epoch).Distinct());
        if (selection.Kind == CheckpointSelectionKind.Epoch)
        {
            var matches = epochs.Where(e => e.Epoch == selection.Epoch).ToList();
            return matches.Count switch
            {
                1 => new ChosenCheckpoint(matches[0].Uri, matches[0].Epoch),
                0 => throw new CheckpointChoiceException(
                    $"{selection}: '{checkpoints}' holds no {CheckpointNames.FileName(selection.Epoch!.Value)} (epochs with a checkpoint: {available})."),
                _ => throw new CheckpointChoiceException(
                    $"{selection} is ambiguous: '{checkpoints}' holds {matches.Count} checkpoints of that epoch ({string.Join(", ", matches.Select(m => m.Uri))}); name one by its path."),
            };
        }
        if (epochs.Count == 0)
        {
            throw new CheckpointChoiceException($"{selection} needs the per-epoch checkpoints (epoch_NNN.ckpt), but '{checkpoints}' holds none.");
        }
        (StoredCheckpoint Checkpoint, double Loss)? lowest;
        try
        {
            lowest = await StoredCheckpoints.LowestLossAsync(store, epochs, cancellationToken);
        }
        catch (InvalidDataException exception)
        {
            throw new CheckpointChoiceException($"{selection}: {exception.Message}", exception);
        }
        return lowest is { } best
            ? new ChosenCheckpoint(best.Checkpoint.Uri, best.Checkpoint.Epoch)
            : throw new CheckpointChoiceException(
                $"{selection}: none of the epoch checkpoints under '{checkpoints}' records a training loss to compare (epochs with a checkpoint: {available}).");
    }

    private static Uri Resolve(CheckpointSelection selection, Uri jobFolder)
    {
        var text = selection.Path!;
        if (text.StartsWith('/'))
        {
            return new Uri(System.IO.Path.GetFullPath(text));
        }
        if (Uri.TryCreate(text, UriKind.Absolute, out var absolute) && absolute.Scheme is "file" or "s3")
        {
            return absolute;
        }
        try
        {
            return jobFolder.Append(!text.Contains('/') && CheckpointNames.Parse(text) is not null ? CheckpointNames.Folder + text : text);
        }
        catch (ArgumentException exception)
        {
            throw new CheckpointChoiceException(
                $"{selection} is neither an absolute path, a file:// or s3:// URI, nor a plain path inside the source job's folder {jobFolder}: {exception.Message}",
                exception);
        }
    }
}
