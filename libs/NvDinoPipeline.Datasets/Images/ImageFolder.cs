using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Datasets.Images;

/// <summary>
/// What a folder of images holds: a staging job's shards (<c>dataset.json</c> or <c>shard-*.bin</c> at its top), or
/// else the image files below it (searched recursively), ordered by their relative path (ordinal) so that a rerun
/// lists them identically. Callers say in their own words what a folder with neither means to them.
/// </summary>
public sealed record ImageFolder(Uri Uri, bool IsShards, IReadOnlyList<ImageFileEntry> Files)
{
    /// <summary>The file name endings of the images a folder is searched for (the formats <see cref="ImageDecoder"/> reads).</summary>
    public static readonly IReadOnlySet<string> Extensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga",
    };

    /// <summary>True for a file name with an image extension.</summary>
    public static bool IsImageName(string name) => Extensions.Contains(Path.GetExtension(name));

    public static async Task<ImageFolder> ListAsync(IArtifactStore store, Uri folderUri, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(folderUri);
        var folder = folderUri.AsFolder();
        if (await store.GetInfoAsync(folder.Append(ShardFormat.DatasetFileName), cancellationToken) is not null)
        {
            return new ImageFolder(folder, IsShards: true, []);
        }
        var images = new List<ImageFileEntry>();
        await foreach (var item in store.ListAsync(folder, cancellationToken))
        {
            var relative = Uri.UnescapeDataString(item.Uri.AbsoluteUri[folder.AbsoluteUri.Length..]);
            var name = relative[(relative.LastIndexOf('/') + 1)..];
            if (!relative.Contains('/') && name.StartsWith("shard-", StringComparison.Ordinal) && name.EndsWith(".bin", StringComparison.Ordinal))
            {
                return new ImageFolder(folder, IsShards: true, []);
            }
            if (IsImageName(name))
            {
                images.Add(new ImageFileEntry(item.Uri, relative, item.Size));
            }
        }
        images.Sort((a, b) => string.CompareOrdinal(a.RelativePath, b.RelativePath));
        return new ImageFolder(folder, IsShards: false, images);
    }

    /// <summary>A sentence for a folder that holds neither: what was looked for.</summary>
    public string NothingFound => $"{Uri} holds neither staged shards ({ShardFormat.DatasetFileName}, shard-*.bin) nor image files ({string.Join(", ", Extensions)}).";
}
