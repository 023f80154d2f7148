using System.Buffers.Binary;
using System.Text;

namespace NvDinoPipeline.Datasets.Shards;

/// <summary>
/// Writes one shard file strictly front to back (header, pixel records, index, footer), so it can stream
/// straight into object storage. The index stays in memory until <see cref="CompleteAsync"/>: 56 bytes plus
/// the path per image.
/// </summary>
public sealed class ShardWriter(Stream output)
{
    private readonly MemoryStream _index = new();
    private readonly MemoryStream _paths = new();
    private bool _started;
    private bool _completed;

    public int Count { get; private set; }

    /// <summary>Bytes written to the output so far.</summary>
    public long Length { get; private set; }

    /// <summary>Appends an image. <paramref name="sha256"/> is the lower-case hex SHA-256 of the original file.</summary>
    public async ValueTask AddAsync(ReadOnlyMemory<byte> rgb, int width, int height, string relativePath, string sha256, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (rgb.Length != (long)width * height * ShardFormat.Channels)
        {
            throw new ArgumentException($"{width}×{height} RGB needs {(long)width * height * ShardFormat.Channels} bytes, got {rgb.Length}.", nameof(rgb));
        }
        var hash = Convert.FromHexString(sha256);
        if (hash.Length != 32)
        {
            throw new ArgumentException($"'{sha256}' is not a SHA-256 in hex.", nameof(sha256));
        }
        await StartAsync(cancellationToken);

        var path = Encoding.UTF8.GetBytes(relativePath);
        var entry = new byte[ShardFormat.IndexEntryBytes];
        BinaryPrimitives.WriteInt64LittleEndian(entry, Length);
        BinaryPrimitives.WriteInt32LittleEndian(entry.AsSpan(8), width);
        BinaryPrimitives.WriteInt32LittleEndian(entry.AsSpan(12), height);
        hash.CopyTo(entry.AsSpan(16));
        BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(48), checked((uint)_paths.Length));
        BinaryPrimitives.WriteInt32LittleEndian(entry.AsSpan(52), path.Length);

        await output.WriteAsync(rgb, cancellationToken);
        Length += rgb.Length;
        _index.Write(entry);
        _paths.Write(path);
        Count++;
    }

    /// <summary>Writes the index and footer and flushes. The output stream is left open.</summary>
    public async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        await StartAsync(cancellationToken);
        var indexOffset = Length;
        await output.WriteAsync(_index.GetBuffer().AsMemory(0, (int)_index.Length), cancellationToken);
        await output.WriteAsync(_paths.GetBuffer().AsMemory(0, (int)_paths.Length), cancellationToken);
        var footer = new byte[ShardFormat.FooterBytes];
        BinaryPrimitives.WriteInt32LittleEndian(footer, Count);
        BinaryPrimitives.WriteUInt32LittleEndian(footer.AsSpan(4), checked((uint)_paths.Length));
        BinaryPrimitives.WriteInt64LittleEndian(footer.AsSpan(8), indexOffset);
        ShardFormat.FooterMagic.CopyTo(footer.AsSpan(16));
        await output.WriteAsync(footer, cancellationToken);
        Length += _index.Length + _paths.Length + footer.Length;
        await output.FlushAsync(cancellationToken);
        _completed = true;
    }

    private async ValueTask StartAsync(CancellationToken cancellationToken)
    {
        if (_started)
        {
            return;
        }
        var header = new byte[ShardFormat.HeaderBytes];
        ShardFormat.HeaderMagic.CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), ShardFormat.Version);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(10), ShardFormat.Channels);
        await output.WriteAsync(header, cancellationToken);
        Length = header.Length;
        _started = true;
    }
}
