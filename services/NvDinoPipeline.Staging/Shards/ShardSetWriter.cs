using System.IO.Pipelines;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Staging.Shards;

/// <summary>
/// Writes the shards of a dataset straight into the artifact store: each shard streams through a pipe into
/// <see cref="IArtifactStore.PutAsync"/> while it is written, so no shard is staged on local disk first.
/// A new shard starts once the current one holds <c>maxShardBytes</c>.
/// </summary>
internal sealed class ShardSetWriter(IArtifactStore store, Uri shardsFolder, long maxShardBytes) : IAsyncDisposable
{
    private readonly List<Task<ShardFileEntry>> _closing = [];
    private OpenShard? _open;

    /// <summary>Every shard URI this writer has started, for clean-up after a failure.</summary>
    public List<Uri> Started { get; } = [];

    public int ImageCount { get; private set; }

    /// <summary>Appends an image; returns the name of the shard it went to.</summary>
    public async Task<string> AddAsync(ReadOnlyMemory<byte> rgb, int width, int height, string relativePath, string sha256, CancellationToken cancellationToken)
    {
        if (_open is not null && _open.Writer.Count > 0 && _open.Writer.Length + rgb.Length > maxShardBytes)
        {
            await CloseAsync(cancellationToken);
        }
        _open ??= Start(cancellationToken);
        if (_open.Upload.IsFaulted)
        {
            await _open.Upload;
        }
        try
        {
            await _open.Writer.AddAsync(rgb, width, height, relativePath, sha256, cancellationToken);
        }
        catch (IOException) when (_open.Upload.IsCompleted)
        {
            // The upload's own failure says what went wrong; the broken pipe only says that something did.
            await _open.Upload;
            throw;
        }
        ImageCount++;
        return _open.Name;
    }

    /// <summary>Finishes the last shard, waits until every shard is stored and returns them in order.</summary>
    public async Task<IReadOnlyList<ShardFileEntry>> CompleteAsync(CancellationToken cancellationToken)
    {
        if (_open is not null)
        {
            await CloseAsync(cancellationToken);
        }
        return await Task.WhenAll(_closing);
    }

    /// <summary>Abandons a shard still being written (its upload fails and leaves no object behind) and waits for
    /// every upload to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_open is { } open)
        {
            _open = null;
            await open.Pipe.Writer.CompleteAsync(new OperationCanceledException("The staging stopped before this shard was complete."));
            await Quietly(open.Upload);
        }
        foreach (var closing in _closing)
        {
            await Quietly(closing);
        }
    }

    private static async Task Quietly(Task upload)
    {
        try
        {
            await upload;
        }
        catch (Exception)
        {
            // The staging is already failing or cancelled; the first failure is the one reported.
        }
    }

    private OpenShard Start(CancellationToken cancellationToken)
    {
        var name = ShardFormat.FileName(Started.Count);
        var uri = shardsFolder.Append(name);
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20, minimumSegmentSize: 64 << 10,
            useSynchronizationContext: false));
        var upload = Task.Run(async () =>
        {
            await using var content = pipe.Reader.AsStream();
            return await store.PutAsync(uri, content, cancellationToken);
        }, cancellationToken);
        Started.Add(uri);
        return new OpenShard(name, pipe, new ShardWriter(new PipeWriterStream(pipe.Writer, batchBytes: 1 << 20)), upload);
    }

    /// <summary>Ends the open shard; its upload finishes in the background (flushing a large shard to disk or S3 takes
    /// a while) while the next shard is written.</summary>
    private async Task CloseAsync(CancellationToken cancellationToken)
    {
        var open = _open!;
        _open = null;
        await open.Writer.CompleteAsync(cancellationToken);
        await open.Pipe.Writer.CompleteAsync();
        _closing.Add(FinishAsync(open));
    }

    private static async Task<ShardFileEntry> FinishAsync(OpenShard open)
    {
        var stored = await open.Upload;
        if (stored.Size != open.Writer.Length)
        {
            throw new IOException($"Shard '{stored.Uri}' was stored with {stored.Size} bytes but {open.Writer.Length} were written.");
        }
        return new ShardFileEntry { Name = open.Name, ImageCount = open.Writer.Count, Bytes = stored.Size, Sha256 = stored.Sha256 };
    }

    private sealed record OpenShard(string Name, Pipe Pipe, ShardWriter Writer, Task<ArtifactInfo> Upload);
}
