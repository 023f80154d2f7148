using System.Security.Cryptography;

namespace NvDinoPipeline.Storage.IO;

/// <summary>
/// Read-only pass-through that hashes what is read and, when the inner stream ends, checks length and
/// SHA-256 against what the store recorded, so a corrupt download cannot be consumed silently. An error of the inner
/// stream that <c>translate</c> maps (to the store's own) is thrown as that; null keeps it.
/// </summary>
internal sealed class VerifyingReadStream(Stream inner, Uri uri, long expectedLength, string? expectedSha256, IDisposable? owner,
    Func<Exception, Exception?>? translate = null)
    : Stream
{
    private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _read;
    private bool _verified;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => expectedLength;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    /// <summary>Lower-case hex SHA-256 of the whole content, once it has been read to the end.</summary>
    public string? ActualSha256 { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n;
        try
        {
            n = inner.Read(buffer);
        }
        catch (Exception exception) when (translate?.Invoke(exception) is { } translated)
        {
            throw translated;
        }
        Observe(buffer[..n], buffer.Length);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n;
        try
        {
            n = await inner.ReadAsync(buffer, cancellationToken);
        }
        catch (Exception exception) when (translate?.Invoke(exception) is { } translated)
        {
            throw translated;
        }
        Observe(buffer.Span[..n], buffer.Length);
        return n;
    }

    private void Observe(ReadOnlySpan<byte> data, int requested)
    {
        if (data.Length > 0)
        {
            _read += data.Length;
            _sha256.AppendData(data);
            if (_read > expectedLength)
            {
                throw new ArtifactIntegrityException(uri, "length", expectedLength.ToString(), $"more than {expectedLength}");
            }

            return;
        }

        // A zero-byte read into a non-empty buffer is the end of the stream.
        if (requested > 0 && !_verified)
        {
            _verified = true;
            ActualSha256 = StreamReading.ToHex(_sha256.GetHashAndReset());
            if (_read != expectedLength)
            {
                throw new ArtifactIntegrityException(uri, "length", expectedLength.ToString(), _read.ToString());
            }

            if (expectedSha256 is not null && !string.Equals(expectedSha256, ActualSha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new ArtifactIntegrityException(uri, "sha256", expectedSha256, ActualSha256);
            }
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            owner?.Dispose();
            _sha256.Dispose();
        }

        base.Dispose(disposing);
    }
}
