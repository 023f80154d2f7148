using System.Text.Json;
using System.Text.Json.Serialization;

namespace NvDinoPipeline.Datasets.Shards;

/// <summary>The <c>dataset.json</c> beside the shards: which shard files make up the dataset, in order.</summary>
public sealed record ShardDatasetFile
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public string Format { get; init; } = ShardFormat.DatasetFormatName;

    public int Version { get; init; } = ShardFormat.Version;

    public int Channels { get; init; } = ShardFormat.Channels;

    public required int ImageCount { get; init; }

    public required int MaxSide { get; init; }

    public required IReadOnlyList<ShardFileEntry> Shards { get; init; }

    public static ShardDatasetFile Parse(string json, string location)
    {
        ShardDatasetFile? file;
        try
        {
            file = JsonSerializer.Deserialize<ShardDatasetFile>(json, Json);
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"'{location}' is not a shard dataset description: {exception.Message}", exception);
        }
        if (file is null || file.Format != ShardFormat.DatasetFormatName || file.Shards is null)
        {
            throw new InvalidDataException($"'{location}' is not a shard dataset description (format '{file?.Format}', expected '{ShardFormat.DatasetFormatName}').");
        }
        if (file.Version != ShardFormat.Version || file.Channels != ShardFormat.Channels)
        {
            throw new InvalidDataException($"'{location}' describes version {file.Version} shards with {file.Channels} channels; this reader reads version {ShardFormat.Version} with {ShardFormat.Channels}.");
        }
        foreach (var shard in file.Shards)
        {
            if (shard.Name is null || shard.Name.Contains('/') || shard.Name.Contains('\\') || shard.Name is "." or "..")
            {
                throw new InvalidDataException($"'{location}' names a shard '{shard.Name}' that is not a plain file name.");
            }
        }
        return file;
    }
}

public sealed record ShardFileEntry
{
    public required string Name { get; init; }

    public required int ImageCount { get; init; }

    public required long Bytes { get; init; }

    [JsonPropertyName("sha256")]
    public string? Sha256 { get; init; }
}
