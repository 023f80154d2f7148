using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;

namespace NvDinoPipeline.Export.Checkpoints;

/// <summary>The checkpoint file an export reads, with a local copy and the SHA-256 of that copy.</summary>
public sealed record SelectedCheckpoint(Uri Uri, string LocalPath, string Sha256, CheckpointSelection Selection, int? Epoch)
{
    /// <summary>How the file was chosen, for messages: "export.checkpoint = latest".</summary>
    public string Describe() => Selection.ToString();
}

/// <summary>
/// Finds the checkpoint <c>export.checkpoint</c> asks for in the source job's artifacts, as TAO does: the final backbone
/// (latest), the epoch checkpoint with the lowest training loss (best), the checkpoint of an epoch, or a named file.
/// The training worker writes <c>epoch_NNN.ckpt</c> per checkpointed epoch (<c>CheckpointNames.FileName</c>).
/// </summary>
public sealed class CheckpointLocator(IArtifactStore store, ILogger logger)
{
    public async Task<SelectedCheckpoint> LocateAsync(ExportModel command, CheckpointSelection selection, string scratchDirectory,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(selection);
        var (uri, epoch) = selection.Kind switch
        {
            CheckpointSelectionKind.Latest => (command.BackboneUri, (int?)null),
            CheckpointSelectionKind.Path => (Resolve(command.CheckpointsUri, selection), null),
            CheckpointSelectionKind.Epoch => await FindEpochAsync(command.CheckpointsUri, selection, cancellationToken),
            _ => await FindBestAsync(command.CheckpointsUri, selection, cancellationToken),
        };

        ArtifactInfo? info;
        string local;
        try
        {
            info = await store.GetInfoAsync(uri, cancellationToken);
            if (info is null)
            {
                throw new StageInputException($"Checkpoint '{uri}' ({selection}) does not exist.");
            }
            local = await store.GetLocalPathAsync(uri, scratchDirectory, cancellationToken);
        }
        catch (ArtifactNotFoundException exception)
        {
            throw new StageInputException($"Checkpoint '{uri}' ({selection}) does not exist.", exception);
        }
        catch (ArtifactIntegrityException exception)
        {
            throw new StageInputException($"Checkpoint '{uri}' ({selection}) is corrupt: {exception.Message}", exception);
        }
        catch (ArgumentException exception)
        {
            throw new StageInputException($"Checkpoint '{uri}' ({selection}) is not a location the artifact store can read: {exception.Message}", exception);
        }

        var sha256 = await HashAsync(local, cancellationToken);
        if (info.Sha256 is { } recorded && !string.Equals(recorded, sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new StageInputException(
                $"Checkpoint '{uri}' ({selection}) is truncated or was modified after it was written: its {new FileInfo(local).Length} bytes " +
                $"hash to SHA-256 {sha256}, but {recorded} was recorded when it was stored.");
        }
        logger.LogInformation("Exporting checkpoint {CheckpointUri} ({Selection}), SHA-256 {Sha256}", uri, selection.ToString(), sha256);
        return new SelectedCheckpoint(uri, local, sha256, selection, epoch);
    }

    /// <summary>Epoch checkpoints under <paramref name="folder"/>, by epoch (mid-epoch checkpoints are not candidates).</summary>
    private async Task<IReadOnlyList<StoredCheckpoint>> ListEpochCheckpointsAsync(Uri folder, CancellationToken cancellationToken) =>
        [.. (await StoredCheckpoints.ListAsync(store, folder, cancellationToken)).Where(c => c.IsEpochEnd)];

    private async Task<(Uri, int?)> FindEpochAsync(Uri folder, CheckpointSelection selection, CancellationToken cancellationToken)
    {
        var epochs = await ListEpochCheckpointsAsync(folder, cancellationToken);
        var matches = epochs.Where(e => e.Epoch == selection.Epoch).ToList();
        if (matches.Count == 0)
        {
            var available = epochs.Count == 0 ? "none" : string.Join(", ", epochs.Select(e => e.Epoch).Distinct());
            throw new StageInputException(
                $"Checkpoint of epoch {selection.Epoch} ({selection}) does not exist: '{AsFolder(folder)}' holds no epoch_{selection.Epoch:D3}.ckpt " +
                $"(epochs with a checkpoint: {available}).");
        }
        if (matches.Count > 1)
        {
            throw new StageInputException(
                $"{selection} is ambiguous: '{AsFolder(folder)}' holds {matches.Count} checkpoints of that epoch ({string.Join(", ", matches.Select(m => m.Uri))}); name one by its path.");
        }
        return (matches[0].Uri, matches[0].Epoch);
    }

    private async Task<(Uri, int?)> FindBestAsync(Uri folder, CheckpointSelection selection, CancellationToken cancellationToken)
    {
        var epochs = await ListEpochCheckpointsAsync(folder, cancellationToken);
        if (epochs.Count == 0)
        {
            throw new StageInputException(
                $"{selection} needs the per-epoch checkpoints (epoch_NNN.ckpt), but '{AsFolder(folder)}' holds none.");
        }
        (StoredCheckpoint Checkpoint, double Loss)? lowest;
        try
        {
            lowest = await StoredCheckpoints.LowestLossAsync(store, epochs, cancellationToken);
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException($"{selection}: {exception.Message}", exception);
        }
        if (lowest is not { } best)
        {
            throw new StageInputException(
                $"{selection}: none of the {epochs.Count} epoch checkpoints under '{AsFolder(folder)}' records a training loss to compare.");
        }
        logger.LogInformation("Best checkpoint is epoch {Epoch} with mean training loss {Loss:F4}", best.Checkpoint.Epoch, best.Loss);
        return (best.Checkpoint.Uri, best.Checkpoint.Epoch);
    }

    private static Uri Resolve(Uri checkpointsFolder, CheckpointSelection selection)
    {
        var text = selection.Path!;
        if (text.StartsWith('/'))
        {
            return new Uri(Path.GetFullPath(text));
        }
        if (Uri.TryCreate(text, UriKind.Absolute, out var absolute) && absolute.Scheme is "file" or "s3")
        {
            return absolute;
        }
        try
        {
            return AsFolder(checkpointsFolder).Append(text);
        }
        catch (ArgumentException exception)
        {
            throw new StageInputException(
                $"{selection} is neither an absolute path, a file:// or s3:// URI, nor a plain path inside the source job's folder: {exception.Message}", exception);
        }
    }

    private static Uri AsFolder(Uri uri) => uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");

    private static async Task<string> HashAsync(string path, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
    }
}
