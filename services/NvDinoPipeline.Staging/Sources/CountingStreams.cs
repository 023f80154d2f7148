namespace NvDinoPipeline.Staging.Sources;

/// <summary>Counts the bytes read from the source as it streams in (packed bytes for the ratio cap, progress).</summary>
internal sealed class CountingReadStream(Stream inner) : ReadOnlyStream
{
    private readonly byte[] _tail = new byte[8];

    public long BytesRead { get; private set; }

    /// <summary>The last (up to) 8 bytes read: a gzip stream's trailer once the source is read to its end.</summary>
    public ReadOnlySpan<byte> Tail => _tail.AsSpan((int)Math.Max(0, 8 - BytesRead));

    /// <summary>Where read bytes are reported from now on (bytes read before it is set are not).</summary>
    public StagingCounters? Counters { get; set; }

    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        Count(buffer[..read]);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken);
        Count(buffer.Span[..read]);
        return read;
    }

    private void Count(ReadOnlySpan<byte> read)
    {
        if (read.Length >= 8)
        {
            read[^8..].CopyTo(_tail);
        }
        else if (read.Length > 0)
        {
            _tail.AsSpan(read.Length).CopyTo(_tail);
            read.CopyTo(_tail.AsSpan(8 - read.Length));
        }
        BytesRead += read.Length;
        Counters?.AddSourceBytes(read.Length);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>Replays the bytes already read to recognise the archive, then continues with the rest of the source.</summary>
internal sealed class PrefixedReadStream(byte[] prefix, int prefixLength, Stream rest) : ReadOnlyStream
{
    private int _position;

    public override int Read(Span<byte> buffer)
    {
        if (_position < prefixLength)
        {
            var count = Math.Min(buffer.Length, prefixLength - _position);
            prefix.AsSpan(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }
        return rest.Read(buffer);
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _position < prefixLength ? ValueTask.FromResult(Read(buffer.Span)) : rest.ReadAsync(buffer, cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            rest.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>
/// Sits on the unpacked side of a decompressor and checks every read against <see cref="ArchiveLimits"/>,
/// so skipping over an entry's data (as the tar reader does for refused entries) is capped as well.
/// </summary>
internal sealed class UnpackGuardStream(Stream unpacked, CountingReadStream packed, ArchiveLimits limits, bool compressed) : ReadOnlyStream
{
    public long BytesUnpacked { get; private set; }

    public override int Read(Span<byte> buffer)
    {
        var read = unpacked.Read(buffer);
        Check(read);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await unpacked.ReadAsync(buffer, cancellationToken);
        Check(read);
        return read;
    }

    private void Check(int read)
    {
        BytesUnpacked += read;
        limits.CheckUnpacked(BytesUnpacked, packed.BytesRead, compressed);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            unpacked.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>A forward-only readable stream; subclasses implement the span and memory reads.</summary>
internal abstract class ReadOnlyStream : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public abstract override int Read(Span<byte> buffer);

    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
