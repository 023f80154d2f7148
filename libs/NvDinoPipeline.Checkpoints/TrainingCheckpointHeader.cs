using System.Buffers.Binary;
using System.Text.Json;
namespace NvDinoPipeline.Checkpoints;

/// <summary>
/// Reads the training state from the safetensors header of a training checkpoint without reading its tensors, so
/// choosing the best of many multi-gigabyte checkpoints on S3 transfers only their headers.
/// </summary>
public static class TrainingCheckpointHeader
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    // TrainingCheckpointFile stores the state with the web defaults (camelCase names).
    private static readonly JsonSerializerOptions StateJson = new(JsonSerializerDefaults.Web);

    /// <summary>The mean training loss of the checkpoint's last epoch, or null when the checkpoint records none.</summary>
    public static async Task<double?> ReadLossAsync(Stream stream, Uri source, CancellationToken cancellationToken)
    {
        var state = await ReadStateAsync(stream, source, cancellationToken);
        return state.Metrics.TryGetValue(TrainingState.LossMetric, out var loss) ? loss : null;
    }

    public static async Task<TrainingState> ReadStateAsync(Stream stream, Uri source, CancellationToken cancellationToken)
    {
        var lengthBytes = new byte[8];
        if (await stream.ReadAtLeastAsync(lengthBytes, 8, throwOnEndOfStream: false, cancellationToken) < 8)
        {
            throw new InvalidDataException($"'{source}' is shorter than a safetensors header.");
        }
        var length = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (length is 0 or > MaxHeaderBytes)
        {
            throw new InvalidDataException($"'{source}' declares a {length}-byte safetensors header; it is not a training checkpoint.");
        }
        var header = new byte[length];
        if (await stream.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken) < header.Length)
        {
            throw new InvalidDataException($"'{source}' ends inside its {length}-byte safetensors header (the file is cut short).");
        }
        try
        {
            using var document = JsonDocument.Parse(header);
            if (!document.RootElement.TryGetProperty("__metadata__", out var metadata)
                || !metadata.TryGetProperty(TrainingState.MetadataKey, out var stateText)
                || stateText.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"'{source}' has no '{TrainingState.MetadataKey}' metadata; it is not a training checkpoint.");
            }
            return JsonSerializer.Deserialize<TrainingState>(stateText.GetString()!, StateJson)
                ?? throw new InvalidDataException($"'{source}' has an empty training state.");
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"'{source}' has an unreadable safetensors header or training state: {exception.Message}", exception);
        }
    }
}
