using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Checkpoints;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Export.Checkpoints;

/// <summary>The checkpoint file an export reads, with a local copy and the SHA-256 of that copy.</summary>
public sealed record SelectedCheckpoint(Uri Uri, string LocalPath, string Sha256, CheckpointSelection Selection, int? Epoch)
{
    /// <summary>How the file was chosen, for messages: "export.checkpoint = latest".</summary>
    public string Describe() => Selection.ToString();
}

/// <summary>
/// Reads the checkpoint <c>export.checkpoint</c> chooses (<see cref="CheckpointChoice"/>: the final backbone, the best or
/// an epoch's checkpoint, or a named file) and checks it against the hash the store recorded.
/// </summary>
public sealed class CheckpointLocator(IArtifactStore store, ILogger logger)
{
    public async Task<SelectedCheckpoint> LocateAsync(ExportModel command, CheckpointSelection selection, string scratchDirectory,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(selection);
        Uri uri;
        int? epoch;
        try
        {
            (uri, epoch) = await CheckpointChoice.ChooseAsync(store, selection, command.CheckpointsUri, command.BackboneUri, cancellationToken);
        }
        catch (CheckpointChoiceException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }

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

    private static async Task<string> HashAsync(string path, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
    }
}
