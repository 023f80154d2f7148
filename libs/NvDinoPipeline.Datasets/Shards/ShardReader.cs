using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Datasets.Shards;

/// <summary>
/// Random access to a staged dataset: image <c>i</c> of all its shards, in staging order. The shard indexes
/// are held in memory (about 60 bytes plus the path per image); pixels are read from disk on each
/// <see cref="Read"/> with positional reads, so several threads may read at once.
/// </summary>
public sealed class ShardReader : IDisposable
{
    private readonly Shard[] _shards;
    private readonly int[] _firstIndex;

    private ShardReader(Shard[] shards)
    {
        _shards = shards;
        _firstIndex = new int[shards.Length];
        var total = 0L;
        for (var i = 0; i < shards.Length; i++)
        {
            _firstIndex[i] = (int)total;
            total += shards[i].Count;
        }
        Count = checked((int)total);
    }

    /// <summary>Number of images in the dataset.</summary>
    public int Count { get; }

    /// <summary>
    /// Opens a local dataset: a shards folder (the shards its <c>dataset.json</c> lists, or else every
    /// <c>shard-*.bin</c> in name order) or a single shard file.
    /// </summary>
    /// <exception cref="InvalidDataException">A file is not a shard, is cut short or disagrees with <c>dataset.json</c>.</exception>
    public static ShardReader Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (File.Exists(path))
        {
            return FromFiles([(path, null)]);
        }
        if (!Directory.Exists(path))
        {
            throw new DirectoryNotFoundException($"'{path}' is neither a shard file nor a folder of shards.");
        }
        var description = Path.Combine(path, ShardFormat.DatasetFileName);
        if (File.Exists(description))
        {
            var dataset = ShardDatasetFile.Parse(File.ReadAllText(description), description);
            return FromFiles([.. dataset.Shards.Select(s => (Path.Combine(path, s.Name), (int?)s.ImageCount))]);
        }
        var files = Directory.GetFiles(path, "shard-*.bin").Order(StringComparer.Ordinal).Select(f => (f, (int?)null)).ToArray();
        if (files.Length == 0)
        {
            throw new InvalidDataException($"'{path}' holds neither {ShardFormat.DatasetFileName} nor shard-*.bin files.");
        }
        return FromFiles(files);
    }

    /// <summary>
    /// Opens the dataset at <paramref name="datasetUri"/> (the shards folder of a staging job, as carried by
    /// <c>DatasetStaged.DatasetUri</c>). Shards on <c>file://</c> are read in place; shards on <c>s3://</c>
    /// are downloaded into <paramref name="scratchDirectory"/> and verified (a verified copy there is reused).
    /// </summary>
    public static async Task<ShardReader> OpenAsync(IArtifactStore store, Uri datasetUri, string scratchDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(datasetUri);
        var (shards, described) = await ListAsync(store, datasetUri, cancellationToken);
        if (shards.Count == 0 && !described)
        {
            var folder = datasetUri.AsFolder();
            throw new InvalidDataException($"'{folder}' holds neither {ShardFormat.DatasetFileName} nor shard-*.bin files.");
        }

        var local = new List<(string, int?)>(shards.Count);
        foreach (var (uri, count) in shards)
        {
            local.Add((await store.GetLocalPathAsync(uri, scratchDirectory, cancellationToken), count));
        }
        return FromFiles(local);
    }

    /// <summary>
    /// The shards of the dataset at <paramref name="datasetUri"/>, in staging order, without reading them: those its
    /// <c>dataset.json</c> lists, or else every <c>shard-*.bin</c> at its top in name order; empty when it has neither.
    /// </summary>
    public static async Task<IReadOnlyList<(Uri Uri, int? Count)>> ListShardsAsync(IArtifactStore store, Uri datasetUri, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(datasetUri);
        return (await ListAsync(store, datasetUri, cancellationToken)).Shards;
    }

    private static async Task<(IReadOnlyList<(Uri Uri, int? Count)> Shards, bool Described)> ListAsync(IArtifactStore store, Uri datasetUri,
        CancellationToken cancellationToken)
    {
        var folder = datasetUri.AsFolder();
        var descriptionUri = folder.Append(ShardFormat.DatasetFileName);
        if (await store.GetInfoAsync(descriptionUri, cancellationToken) is not null)
        {
            string json;
            await using (var stream = await store.OpenReadAsync(descriptionUri, cancellationToken))
            using (var reader = new StreamReader(stream, Encoding.UTF8))
            {
                json = await reader.ReadToEndAsync(cancellationToken);
            }
            var dataset = ShardDatasetFile.Parse(json, descriptionUri.AbsoluteUri);
            return ([.. dataset.Shards.Select(s => (folder.Append(s.Name), (int?)s.ImageCount))], true);
        }
        var listed = new List<(Uri, int?)>();
        await foreach (var item in store.ListAsync(folder, cancellationToken))
        {
            var name = Uri.UnescapeDataString(item.Uri.AbsolutePath[(item.Uri.AbsolutePath.LastIndexOf('/') + 1)..]);
            if (name.StartsWith("shard-", StringComparison.Ordinal) && name.EndsWith(".bin", StringComparison.Ordinal)
                && item.Uri.AbsoluteUri.LastIndexOf('/') == folder.AbsoluteUri.Length - 1)
            {
                listed.Add((item.Uri, null));
            }
        }
        return ([.. listed.OrderBy(s => s.Item1.AbsoluteUri, StringComparer.Ordinal)], false);
    }

    /// <summary>Image <paramref name="index"/> with its pixels.</summary>
    public ShardImage Read(int index)
    {
        var (shard, entry) = Locate(index);
        var rgb = new byte[entry.Width * entry.Height * ShardFormat.Channels];
        shard.ReadPixels(entry.Offset, rgb);
        return new ShardImage(rgb, entry.Width, entry.Height, shard.PathOf(entry), Convert.ToHexStringLower(entry.Sha256.Span));
    }

    /// <summary>Size, path and hash of image <paramref name="index"/>, without reading its pixels.</summary>
    public ShardImageInfo GetInfo(int index)
    {
        var (shard, entry) = Locate(index);
        return new ShardImageInfo(entry.Width, entry.Height, shard.PathOf(entry), Convert.ToHexStringLower(entry.Sha256.Span));
    }

    public void Dispose()
    {
        foreach (var shard in _shards)
        {
            shard.Dispose();
        }
    }

    private (Shard Shard, IndexEntry Entry) Locate(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        var position = Array.BinarySearch(_firstIndex, index);
        if (position < 0)
        {
            position = ~position - 1;
        }
        // Empty shards share their first index with the next one; take the last shard starting there.
        while (position + 1 < _firstIndex.Length && _firstIndex[position + 1] == index)
        {
            position++;
        }
        var shard = _shards[position];
        return (shard, shard.Entry(index - _firstIndex[position]));
    }

    private static ShardReader FromFiles(IReadOnlyList<(string Path, int? ExpectedCount)> files)
    {
        var shards = new List<Shard>(files.Count);
        try
        {
            foreach (var (path, expected) in files)
            {
                var shard = Shard.Open(path);
                shards.Add(shard);
                if (expected is { } count && count != shard.Count)
                {
                    throw new InvalidDataException($"Shard '{path}' holds {shard.Count} images but the dataset description lists {count}.");
                }
            }
            return new ShardReader([.. shards]);
        }
        catch
        {
            foreach (var shard in shards)
            {
                shard.Dispose();
            }
            throw;
        }
    }

    private readonly record struct IndexEntry(long Offset, int Width, int Height, ReadOnlyMemory<byte> Sha256, int PathOffset, int PathLength);

    private sealed class Shard : IDisposable
    {
        private readonly SafeFileHandle _handle;
        private readonly string _path;
        private readonly byte[] _index;
        private readonly byte[] _paths;

        private Shard(SafeFileHandle handle, string path, int count, byte[] index, byte[] paths)
        {
            _handle = handle;
            _path = path;
            Count = count;
            _index = index;
            _paths = paths;
        }

        public int Count { get; }

        public static Shard Open(string path)
        {
            var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, FileOptions.RandomAccess);
            try
            {
                var length = RandomAccess.GetLength(handle);
                if (length < ShardFormat.HeaderBytes + ShardFormat.FooterBytes)
                {
                    throw Bad(path, $"it has {length} bytes, fewer than a header and footer");
                }
                var header = new byte[ShardFormat.HeaderBytes];
                ReadExactly(handle, header, 0, path);
                if (!header.AsSpan(0, 8).SequenceEqual(ShardFormat.HeaderMagic))
                {
                    throw Bad(path, "it does not start with the shard signature");
                }
                var version = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(8));
                var channels = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(10));
                if (version != ShardFormat.Version || channels != ShardFormat.Channels)
                {
                    throw Bad(path, $"it is version {version} with {channels} channels; this reader reads version {ShardFormat.Version} with {ShardFormat.Channels}");
                }
                var footer = new byte[ShardFormat.FooterBytes];
                ReadExactly(handle, footer, length - ShardFormat.FooterBytes, path);
                if (!footer.AsSpan(16, 8).SequenceEqual(ShardFormat.FooterMagic))
                {
                    throw Bad(path, "it does not end with the shard footer (the file is cut short)");
                }
                var count = BinaryPrimitives.ReadInt32LittleEndian(footer);
                var pathBytes = BinaryPrimitives.ReadUInt32LittleEndian(footer.AsSpan(4));
                var indexOffset = BinaryPrimitives.ReadInt64LittleEndian(footer.AsSpan(8));
                if (count < 0 || indexOffset < ShardFormat.HeaderBytes
                    || indexOffset + (long)count * ShardFormat.IndexEntryBytes + pathBytes + ShardFormat.FooterBytes != length)
                {
                    throw Bad(path, "its footer does not match its length");
                }
                var index = new byte[count * ShardFormat.IndexEntryBytes];
                ReadExactly(handle, index, indexOffset, path);
                var paths = new byte[pathBytes];
                ReadExactly(handle, paths, indexOffset + index.Length, path);
                var shard = new Shard(handle, path, count, index, paths);
                for (var i = 0; i < count; i++)
                {
                    var entry = shard.Entry(i);
                    if (entry.Width < 1 || entry.Height < 1 || entry.Offset < ShardFormat.HeaderBytes
                        || entry.Offset + (long)entry.Width * entry.Height * ShardFormat.Channels > indexOffset
                        || entry.PathOffset < 0 || entry.PathLength < 0 || (long)entry.PathOffset + entry.PathLength > pathBytes)
                    {
                        throw Bad(path, $"index entry {i} points outside the file");
                    }
                }
                return shard;
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        public IndexEntry Entry(int local)
        {
            var entry = _index.AsSpan(local * ShardFormat.IndexEntryBytes, ShardFormat.IndexEntryBytes);
            return new IndexEntry(
                BinaryPrimitives.ReadInt64LittleEndian(entry),
                BinaryPrimitives.ReadInt32LittleEndian(entry[8..]),
                BinaryPrimitives.ReadInt32LittleEndian(entry[12..]),
                _index.AsMemory(local * ShardFormat.IndexEntryBytes + 16, 32),
                (int)BinaryPrimitives.ReadUInt32LittleEndian(entry[48..]),
                BinaryPrimitives.ReadInt32LittleEndian(entry[52..]));
        }

        public string PathOf(IndexEntry entry) => Encoding.UTF8.GetString(_paths, entry.PathOffset, entry.PathLength);

        public void ReadPixels(long offset, byte[] destination) => ReadExactly(_handle, destination, offset, _path);

        public void Dispose() => _handle.Dispose();

        private static void ReadExactly(SafeFileHandle handle, byte[] destination, long offset, string path)
        {
            var total = 0;
            while (total < destination.Length)
            {
                var read = RandomAccess.Read(handle, destination.AsSpan(total), offset + total);
                if (read == 0)
                {
                    throw Bad(path, $"it ends before byte {offset + destination.Length}");
                }
                total += read;
            }
        }

        private static InvalidDataException Bad(string path, string what) => new($"'{path}' is not a readable shard: {what}.");
    }
}
