using System.Buffers;
using System.IO.Pipelines;

namespace NvDinoPipeline.Staging.Shards;

/// <summary>
/// Writes into a pipe's own buffers and makes them visible to the reader once a batch has gathered (or on
/// flush): one copy per byte, and the reading upload wakes once per batch rather than once per image.
/// </summary>
internal sealed class PipeWriterStream(PipeWriter writer, int batchBytes) : Stream
{
    private long _unflushed;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        writer.Write(buffer.Span);
        _unflushed += buffer.Length;
        if (_unflushed >= batchBytes)
        {
            await FlushAsync(cancellationToken);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        _unflushed = 0;
        var result = await writer.FlushAsync(cancellationToken);
        if (result.IsCanceled)
        {
            throw new OperationCanceledException("The shard upload was cancelled.");
        }
        if (result.IsCompleted)
        {
            throw new IOException("The shard upload stopped reading before the shard was complete.");
        }
    }

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
