using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Staging.Caching;

/// <summary>One artifact of a cached staging, with what it must still look like to be reused.</summary>
internal sealed record CachedArtifact(Uri Uri, long Size, string? Sha256);

/// <summary>An earlier staging of the same source with the same settings: <c>&lt;root&gt;/_cache/staging/&lt;key&gt;.json</c>.</summary>
internal sealed record StagingCacheEntry
{
    public required string Key { get; init; }

    public required Uri Source { get; init; }

    public required string Fingerprint { get; init; }

    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public required Uri ManifestUri { get; init; }

    public required Uri StatisticsUri { get; init; }

    public required Uri DatasetUri { get; init; }

    public required Uri ReportUri { get; init; }

    public required int ImageCount { get; init; }

    public required int SkippedCount { get; init; }

    public required int DuplicateCount { get; init; }

    public required DateTimeOffset StagedAt { get; init; }

    public required IReadOnlyList<CachedArtifact> Artifacts { get; init; }
}

/// <summary>
/// Remembers where a source was staged, keyed by the source's content fingerprint and the settings that
/// shape the output. An entry is only reused after every artifact it points at is found unchanged.
/// </summary>
internal sealed class StagingCache(IArtifactStore store, ILogger logger)
{
    private const string FormatTag = "nvdino-staging/1";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static string Key(string fingerprint, StagingOptions options)
    {
        var identity = string.Create(CultureInfo.InvariantCulture,
            $"{FormatTag}\n{fingerprint}\nmaxSide={options.MaxSide}\nmaxImageSide={options.MaxImageSide}\nmaxImagePixels={options.MaxImagePixels}\nmaxFileBytes={options.MaxFileBytes}\njpeg={ImageDecoder.JpegDecoderName}\n");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)));
    }

    public Uri EntryUri(string key) => store.Root.Append($"_cache/staging/{key}.json");

    /// <summary>The entry for <paramref name="key"/> when it exists and all its artifacts are still in place; otherwise null.</summary>
    public async Task<StagingCacheEntry?> TryGetAsync(string key, CancellationToken cancellationToken)
    {
        var uri = EntryUri(key);
        if (await store.GetInfoAsync(uri, cancellationToken) is null)
        {
            return null;
        }
        StagingCacheEntry? entry;
        try
        {
            await using var stream = await store.OpenReadAsync(uri, cancellationToken);
            entry = await JsonSerializer.DeserializeAsync<StagingCacheEntry>(stream, Json, cancellationToken);
        }
        catch (Exception exception) when (exception is JsonException or ArtifactNotFoundException or ArtifactIntegrityException)
        {
            logger.LogWarning(exception, "Staging cache entry {CacheEntry} is unreadable; staging again", uri);
            return null;
        }
        if (entry is null || entry.Key != key)
        {
            logger.LogWarning("Staging cache entry {CacheEntry} does not describe key {CacheKey}; staging again", uri, key);
            return null;
        }
        foreach (var artifact in entry.Artifacts)
        {
            var info = await store.GetInfoAsync(artifact.Uri, cancellationToken);
            if (info is null || info.Size != artifact.Size
                || (info.Sha256 is not null && artifact.Sha256 is not null && !string.Equals(info.Sha256, artifact.Sha256, StringComparison.OrdinalIgnoreCase)))
            {
                logger.LogInformation("Staging cache entry {CacheEntry} points at {Artifact}, which is {State}; staging again",
                    uri, artifact.Uri, info is null ? "gone" : "changed");
                return null;
            }
        }
        return entry;
    }

    public async Task PutAsync(StagingCacheEntry entry, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(entry, Json));
        var uri = EntryUri(entry.Key);
        // The one write of a staging job outside its folder: the store-wide index, named by a hash of the source.
        using var permit = ArtifactConfinement.Permit(uri);
        await store.PutAsync(uri, content, cancellationToken);
    }
}
