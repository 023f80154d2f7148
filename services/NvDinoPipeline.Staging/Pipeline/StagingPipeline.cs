using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Threading.Channels;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Staging.Images;
using NvDinoPipeline.Staging.Output;
using NvDinoPipeline.Staging.Shards;
using NvDinoPipeline.Staging.Sources;

namespace NvDinoPipeline.Staging.Pipeline;

/// <summary>What one staging produced, before it is published.</summary>
internal sealed record StagingOutcome(DatasetStatistics Statistics, IReadOnlyList<ShardFileEntry> Shards);

/// <summary>
/// Reader → decoders → writer over bounded channels. One reader pulls files from the source (download and
/// unpacking overlap there), <see cref="StagingOptions.DecodeParallelism"/> decoders hash, validate and scale
/// them, and one writer puts them in source order into shards, the manifest and the statistics, dropping
/// exact duplicates. Memory stays bounded by a window of files in flight and a budget of undecoded bytes.
/// </summary>
internal sealed class StagingPipeline(StagingOptions options)
{
    private sealed record RawItem(long Sequence, SourceFile File);

    private sealed record StagedItem(long Sequence, string RelativePath, int SourceBytes, string Sha256, DecodeResult Result, ChannelSums Sums);

    public async Task<StagingOutcome> RunAsync(DatasetSource source, SourceReading reading, ShardSetWriter shards, ManifestWriter manifest,
        CancellationToken cancellationToken)
    {
        var parallelism = options.EffectiveDecodeParallelism;
        var window = new SemaphoreSlim(parallelism * 8);
        var budget = new ByteBudget(options.MaxBufferedBytes);
        var toDecode = Channel.CreateBounded<RawItem>(new BoundedChannelOptions(parallelism * 2) { SingleWriter = true });
        var decoded = Channel.CreateUnbounded<StagedItem>(new UnboundedChannelOptions { SingleReader = true });
        var decoder = new ImageStager(options);
        var statistics = new DatasetStatistics();

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = stop.Token;
        ExceptionDispatchInfo? failure = null;
        var failureLock = new Lock();

        void Fail(Exception exception)
        {
            lock (failureLock)
            {
                // Tasks cancelled because another one failed are not the story; the first real failure is.
                if (failure is null && !(exception is OperationCanceledException && stop.IsCancellationRequested))
                {
                    failure = ExceptionDispatchInfo.Capture(exception);
                }
            }
            stop.Cancel();
        }

        async Task Run(Func<Task> body)
        {
            try
            {
                await body();
            }
            catch (Exception exception)
            {
                Fail(exception);
            }
        }

        async Task ReadAsync()
        {
            try
            {
                long sequence = 0;
                await foreach (var file in source.ReadAsync(reading, token))
                {
                    try
                    {
                        await window.WaitAsync(token);
                        await budget.AcquireAsync(file.Length, token);
                    }
                    catch
                    {
                        ArrayPool<byte>.Shared.Return(file.Buffer);
                        throw;
                    }
                    await toDecode.Writer.WriteAsync(new RawItem(sequence++, file), token);
                }
            }
            finally
            {
                toDecode.Writer.TryComplete();
            }
        }

        // Decoding is long CPU-bound work: on pool threads it would starve the reader and writer continuations
        // (the pool starts with one thread per core and grows slowly), so each decoder gets a thread of its own.
        void Decode()
        {
            while (toDecode.Reader.WaitToReadAsync(token).AsTask().GetAwaiter().GetResult())
            {
                while (toDecode.Reader.TryRead(out var item))
                {
                    DecodeOne(item);
                }
            }
        }

        void DecodeOne(RawItem item)
        {
            var file = item.File;
            try
            {
                var sha256 = Convert.ToHexStringLower(SHA256.HashData(file.Buffer.AsSpan(0, file.Length)));
                var result = decoder.Decode(file.RelativePath, file.Buffer, file.Length);
                var sums = result.Image is { } image ? ChannelSums.Of(image.Rgb.AsSpan(0, image.StagedWidth * image.StagedHeight * 3)) : default;
                decoded.Writer.TryWrite(new StagedItem(item.Sequence, file.RelativePath, file.Length, sha256, result, sums));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(file.Buffer);
                budget.Release(file.Length);
            }
        }

        async Task DecodeAllAsync()
        {
            try
            {
                await Task.WhenAll(Enumerable.Range(0, parallelism).Select(_ => Task.Factory.StartNew(() =>
                {
                    try
                    {
                        Decode();
                    }
                    catch (Exception exception)
                    {
                        Fail(exception);
                    }
                }, token, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
            }
            finally
            {
                decoded.Writer.TryComplete();
            }
        }

        async Task WriteAsync()
        {
            var pending = new Dictionary<long, StagedItem>();
            // The one structure that grows with the dataset: every distinct image's hash (32 bytes, not its 64-character
            // hex) and the path that first had it, for naming duplicates.
            var firstPathBySha = new Dictionary<ContentHash, string>();
            long next = 0;
            await foreach (var item in decoded.Reader.ReadAllAsync(token))
            {
                pending.Add(item.Sequence, item);
                while (pending.Remove(next, out var ready))
                {
                    await WriteOneAsync(ready, firstPathBySha);
                    next++;
                    window.Release();
                }
            }
            if (pending.Count > 0 && !token.IsCancellationRequested)
            {
                throw new InvalidOperationException($"Staging lost file {next}: {pending.Count} decoded files were never written.");
            }
        }

        async Task WriteOneAsync(StagedItem item, Dictionary<ContentHash, string> firstPathBySha)
        {
            if (item.Result.Image is not { } image)
            {
                reading.Report.Skip(item.RelativePath, item.Result.Reason, item.Result.Detail);
                return;
            }
            var hash = ContentHash.FromHex(item.Sha256);
            if (!firstPathBySha.TryAdd(hash, item.RelativePath))
            {
                reading.Report.Duplicate(item.RelativePath, firstPathBySha[hash], item.Sha256);
                return;
            }
            var index = shards.ImageCount;
            var shard = await shards.AddAsync(image.Rgb.AsMemory(0, image.StagedWidth * image.StagedHeight * 3),
                image.StagedWidth, image.StagedHeight, item.RelativePath, item.Sha256, token);
            await manifest.WriteAsync(index, item.RelativePath, item.Sha256, image, item.SourceBytes, shard, token);
            statistics.Add(image, item.SourceBytes, item.Sums);
            reading.Counters.AddImage();
        }

        var reader = Task.Run(() => Run(ReadAsync), token);
        var decoders = Task.Run(DecodeAllAsync, token);
        var writer = Task.Run(() => Run(WriteAsync), token);
        await Task.WhenAll(Quietly(reader), Quietly(decoders), Quietly(writer));

        failure?.Throw();
        cancellationToken.ThrowIfCancellationRequested();
        var written = await shards.CompleteAsync(cancellationToken);
        return new StagingOutcome(statistics, written);
    }

    /// <summary>Tasks that never started because the token was already cancelled end as cancelled; that is not a failure to report.</summary>
    private static async Task Quietly(Task task)
    {
        try
        {
            await task;
        }
        catch (OperationCanceledException)
        {
        }
    }
}

/// <summary>
/// Bytes of undecoded files allowed in flight between the reader and the decoders. A file larger than the
/// whole budget still passes once nothing else is held, so one big image never deadlocks the pipeline.
/// One waiter at a time (the reader).
/// </summary>
internal sealed class ByteBudget(long capacity)
{
    private readonly Lock _lock = new();
    private long _held;
    private TaskCompletionSource? _released;

    public async ValueTask AcquireAsync(long bytes, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_held == 0 || _held + bytes <= capacity)
                {
                    _held += bytes;
                    return;
                }
                _released ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _released.Task;
            }
            await wait.WaitAsync(cancellationToken);
        }
    }

    public void Release(long bytes)
    {
        TaskCompletionSource? released;
        lock (_lock)
        {
            _held -= bytes;
            released = _released;
            _released = null;
        }
        released?.TrySetResult();
    }
}

/// <summary>A SHA-256 as two 128-bit halves: a compact, exact dictionary key.</summary>
internal readonly record struct ContentHash(UInt128 High, UInt128 Low)
{
    public static ContentHash FromHex(string sha256)
    {
        Span<byte> bytes = stackalloc byte[32];
        Convert.FromHexString(sha256, bytes, out _, out var written);
        if (written != 32)
        {
            throw new ArgumentException($"'{sha256}' is not a SHA-256 in hex.", nameof(sha256));
        }
        return new ContentHash(System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes), System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes[16..]));
    }
}
