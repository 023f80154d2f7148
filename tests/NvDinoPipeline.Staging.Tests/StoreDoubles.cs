using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Staging.Tests;

/// <summary>A store whose downloads trickle in, like a slow network: each read returns at most a small chunk after a pause.</summary>
internal sealed class SlowStore(IArtifactStore inner, int chunkBytes, TimeSpan pause) : IArtifactStore
{
    public Uri Root => inner.Root;

    public ArtifactAccessPolicy Access => inner.Access;

    public Uri JobFolder(Guid pipelineId, Guid jobId) => inner.JobFolder(pipelineId, jobId);

    public Task<ArtifactInfo> PutAsync(Uri destination, Stream content, CancellationToken ct) => inner.PutAsync(destination, content, ct);

    public Task<ArtifactInfo> PutFileAsync(Uri destination, string localPath, CancellationToken ct) => inner.PutFileAsync(destination, localPath, ct);

    public async Task<Stream> OpenReadAsync(Uri source, CancellationToken ct) => new SlowStream(await inner.OpenReadAsync(source, ct), chunkBytes, pause);

    public Task<ArtifactInfo?> GetInfoAsync(Uri uri, CancellationToken ct) => inner.GetInfoAsync(uri, ct);

    public IAsyncEnumerable<ArtifactInfo> ListAsync(Uri prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

    public Task DeleteAsync(Uri uri, CancellationToken ct) => inner.DeleteAsync(uri, ct);

    public Task<string> GetLocalPathAsync(Uri uri, string scratchDirectory, CancellationToken ct) => inner.GetLocalPathAsync(uri, scratchDirectory, ct);

    private sealed class SlowStream(Stream inner, int chunkBytes, TimeSpan pause) : Stream
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

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Delay(pause, cancellationToken);
            return await inner.ReadAsync(buffer[..Math.Min(buffer.Length, chunkBytes)], cancellationToken);
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
            }
            base.Dispose(disposing);
        }
    }
}

/// <summary>A store whose disk fills up: uploads of shards fail after some bytes, as a full volume would.</summary>
internal sealed class FullDiskStore(IArtifactStore inner, long failAfterBytes) : IArtifactStore
{
    public Uri Root => inner.Root;

    public ArtifactAccessPolicy Access => inner.Access;

    public Uri JobFolder(Guid pipelineId, Guid jobId) => inner.JobFolder(pipelineId, jobId);

    public async Task<ArtifactInfo> PutAsync(Uri destination, Stream content, CancellationToken ct)
    {
        if (!destination.AbsolutePath.EndsWith(".bin", StringComparison.Ordinal))
        {
            return await inner.PutAsync(destination, content, ct);
        }
        var buffer = new byte[64 * 1024];
        long total = 0;
        int read;
        while ((read = await content.ReadAsync(buffer, ct)) > 0)
        {
            total += read;
            if (total > failAfterBytes)
            {
                throw new IOException("No space left on device");
            }
        }
        throw new IOException("No space left on device");
    }

    public Task<ArtifactInfo> PutFileAsync(Uri destination, string localPath, CancellationToken ct) => inner.PutFileAsync(destination, localPath, ct);

    public Task<Stream> OpenReadAsync(Uri source, CancellationToken ct) => inner.OpenReadAsync(source, ct);

    public Task<ArtifactInfo?> GetInfoAsync(Uri uri, CancellationToken ct) => inner.GetInfoAsync(uri, ct);

    public IAsyncEnumerable<ArtifactInfo> ListAsync(Uri prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

    public Task DeleteAsync(Uri uri, CancellationToken ct) => inner.DeleteAsync(uri, ct);

    public Task<string> GetLocalPathAsync(Uri uri, string scratchDirectory, CancellationToken ct) => inner.GetLocalPathAsync(uri, scratchDirectory, ct);
}
