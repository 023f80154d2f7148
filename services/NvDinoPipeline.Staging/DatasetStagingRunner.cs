using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Staging.Caching;
using NvDinoPipeline.Staging.Images;
using NvDinoPipeline.Staging.Output;
using NvDinoPipeline.Staging.Pipeline;
using NvDinoPipeline.Staging.Shards;
using NvDinoPipeline.Staging.Sources;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Staging;

/// <summary>
/// Stages a dataset: reads the source once (archive, folder or S3 prefix), validates every image by decoding
/// it, and writes into the job folder the training-ready shards (<c>shards/</c>), <c>manifest.jsonl</c>,
/// <c>statistics.json</c> and <c>staging-report.json</c> (skipped files and duplicates with reasons).
/// A source staged before with the same settings is reused unless the command says <c>Force</c>.
/// </summary>
public sealed class DatasetStagingRunner(IArtifactStore store, IOptions<StagingOptions> options, ILogger<DatasetStagingRunner> logger)
    : IStageRunner<StageDataset, DatasetStaged>
{
    public const string ManifestFileName = "manifest.jsonl";
    public const string StatisticsFileName = "statistics.json";
    public const string ReportFileName = "staging-report.json";
    public const string ShardsFolderName = "shards/";

    private static int _warnedAboutJpeg;

    public async Task<StageResult<DatasetStaged>> RunAsync(StageDataset command, StageContext context, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var jobFolder = context.OutputUri.AsFolder();
        var started = Stopwatch.StartNew();

        await using var source = await SourceResolver.ResolveAsync(command.SourceUri, store, settings, cancellationToken);
        var cache = new StagingCache(store, logger);
        var key = StagingCache.Key(source.Fingerprint, settings);
        if (!command.Force && await cache.TryGetAsync(key, cancellationToken) is { } hit)
        {
            logger.LogInformation("Source {Source} was staged before by job {CachedJobId}; reusing its {ImageCount} images for job {JobId} of pipeline {PipelineId}",
                command.SourceUri, hit.JobId, hit.ImageCount, command.JobId, command.PipelineId);
            await context.ReportNowAsync(new StageProgress(1.0, $"reused the staging of job {hit.JobId} ({hit.ImageCount} images)"), cancellationToken);
            return Result(command, hit.ManifestUri, hit.StatisticsUri, hit.DatasetUri, hit.ReportUri, hit.ImageCount, hit.SkippedCount, hit.DuplicateCount,
                fromCache: true, started.Elapsed, sourceBytes: 0);
        }

        logger.LogInformation("Staging {SourceKind} {Source} ({SourceBytes} bytes) for job {JobId} of pipeline {PipelineId}; JPEG decoder {JpegDecoder}",
            source.Kind, command.SourceUri, source.TotalBytes, command.JobId, command.PipelineId, ImageDecoder.JpegDecoderName);
        if (!ImageDecoder.IsJpegAccelerated && Interlocked.Exchange(ref _warnedAboutJpeg, 1) == 0)
        {
            logger.LogWarning("{Library} is not installed (Debian: libturbojpeg0, Ubuntu: libturbojpeg); JPEGs are decoded by the managed decoder, about four times slower",
                ImageDecoder.JpegLibraryName);
        }
        var scratch = Path.Combine(context.ScratchDirectory, $"staging-{Guid.NewGuid():N}");
        Directory.CreateDirectory(scratch);
        var written = new List<Uri>();
        try
        {
            var shardsFolder = new Uri(jobFolder, ShardsFolderName);
            await RemovePreviousAttemptAsync(shardsFolder, cancellationToken);

            var report = new StagingReport();
            var counters = new StagingCounters { SourceBytesTotal = source.TotalBytes };
            var reading = new SourceReading(settings, report, counters, scratch);
            var manifestPath = Path.Combine(scratch, ManifestFileName);
            StagingOutcome outcome;
            await context.ReportNowAsync(new StageProgress(0, $"staging {source.Kind} {command.SourceUri}"), cancellationToken);
            using (var progressStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                var progress = ReportProgressAsync(context, counters, settings.ProgressInterval, progressStop.Token);
                try
                {
                    await using var shards = new ShardSetWriter(store, shardsFolder, settings.ShardMaxBytes);
                    try
                    {
                        await using var manifest = new ManifestWriter(manifestPath);
                        outcome = await new StagingPipeline(settings).RunAsync(source, reading, shards, manifest, cancellationToken);
                    }
                    finally
                    {
                        written.AddRange(shards.Started);
                    }
                }
                finally
                {
                    await progressStop.CancelAsync();
                    await progress;
                }
            }

            var reportUri = jobFolder.Append(ReportFileName);
            await PutJsonAsync(reportUri, json => report.Write(json, command.SourceUri), cancellationToken);
            var statistics = outcome.Statistics;
            if (statistics.ImageCount == 0)
            {
                throw new StageInputException(
                    $"Source '{command.SourceUri}' has no usable image: {counters.FilesRead} entries read, {report.SkippedCount} files skipped ({report.Summary()}); see {reportUri}.");
            }

            var datasetFile = new ShardDatasetFile { ImageCount = statistics.ImageCount, MaxSide = settings.MaxSide, Shards = outcome.Shards };
            var datasetFileUri = shardsFolder.Append(ShardFormat.DatasetFileName);
            var datasetInfo = await PutBytesAsync(datasetFileUri, JsonSerializer.SerializeToUtf8Bytes(datasetFile, ShardDatasetFile.Json), written, cancellationToken);
            var manifestUri = jobFolder.Append(ManifestFileName);
            var manifestInfo = await store.PutFileAsync(manifestUri, manifestPath, cancellationToken);
            written.Add(manifestUri);
            var statisticsUri = jobFolder.Append(StatisticsFileName);
            var statisticsInfo = await PutJsonAsync(statisticsUri, json => statistics.Write(json, report, settings.MaxSide), cancellationToken);
            written.Add(statisticsUri);

            var elapsed = started.Elapsed;
            logger.LogInformation(
                "Staged {ImageCount} images ({SkippedCount} skipped, {DuplicateCount} duplicates) from {Source} into {DatasetUri} in {Seconds:0.0} s",
                statistics.ImageCount, report.SkippedCount, report.DuplicateCount, command.SourceUri, shardsFolder, elapsed.TotalSeconds);
            IEnumerable<CachedArtifact> artifacts =
            [
                new(manifestUri, manifestInfo.Size, manifestInfo.Sha256),
                new(statisticsUri, statisticsInfo.Size, statisticsInfo.Sha256),
                new(datasetFileUri, datasetInfo.Size, datasetInfo.Sha256),
                .. outcome.Shards.Select(s => new CachedArtifact(shardsFolder.Append(s.Name), s.Bytes, s.Sha256)),
            ];
            await cache.PutAsync(new StagingCacheEntry
            {
                Key = key,
                Source = command.SourceUri,
                Fingerprint = source.Fingerprint,
                PipelineId = command.PipelineId,
                JobId = command.JobId,
                ManifestUri = manifestUri,
                StatisticsUri = statisticsUri,
                DatasetUri = shardsFolder,
                ReportUri = reportUri,
                ImageCount = statistics.ImageCount,
                SkippedCount = report.SkippedCount,
                DuplicateCount = report.DuplicateCount,
                StagedAt = DateTimeOffset.UtcNow,
                Artifacts = [.. artifacts],
            }, cancellationToken);

            return Result(command, manifestUri, statisticsUri, shardsFolder, reportUri, statistics.ImageCount, report.SkippedCount,
                report.DuplicateCount, fromCache: false, elapsed, statistics.SourceBytes);
        }
        catch
        {
            await DeleteQuietlyAsync(written);
            throw;
        }
        finally
        {
            DeleteScratch(scratch);
        }
    }

    private static StageResult<DatasetStaged> Result(StageDataset command, Uri manifestUri, Uri statisticsUri, Uri datasetUri, Uri reportUri,
        int imageCount, int skippedCount, int duplicateCount, bool fromCache, TimeSpan elapsed, long sourceBytes)
    {
        var completed = new DatasetStaged
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            Role = command.Role,
            ManifestUri = manifestUri,
            StatisticsUri = statisticsUri,
            DatasetUri = datasetUri,
            ImageCount = imageCount,
            SkippedCount = skippedCount,
            DuplicateCount = duplicateCount,
            FromCache = fromCache,
        };
        var seconds = Math.Max(elapsed.TotalSeconds, 1e-6);
        var metrics = new Dictionary<string, double>
        {
            ["images"] = imageCount,
            ["skipped"] = skippedCount,
            ["duplicates"] = duplicateCount,
            ["seconds"] = Math.Round(elapsed.TotalSeconds, 3),
        };
        if (!fromCache)
        {
            metrics["images_per_second"] = Math.Round(imageCount / seconds, 1);
            metrics["source_megabytes_per_second"] = Math.Round(sourceBytes / 1e6 / seconds, 2);
        }
        var artifacts = new Dictionary<string, Uri>
        {
            ["manifest"] = manifestUri,
            ["statistics"] = statisticsUri,
            ["dataset"] = datasetUri,
            ["report"] = reportUri,
        };
        return new StageResult<DatasetStaged>(completed, artifacts, metrics)
        {
            Summary = $"{imageCount} images staged ({skippedCount} skipped, {duplicateCount} duplicates){(fromCache ? ", from the staging cache" : "")}",
        };
    }

    /// <summary>Shards of an earlier, interrupted attempt of this job would mix with this one's.</summary>
    private async Task RemovePreviousAttemptAsync(Uri shardsFolder, CancellationToken cancellationToken)
    {
        var stale = new List<Uri>();
        await foreach (var item in store.ListAsync(shardsFolder, cancellationToken))
        {
            stale.Add(item.Uri);
        }
        foreach (var uri in stale)
        {
            await store.DeleteAsync(uri, cancellationToken);
        }
        if (stale.Count > 0)
        {
            logger.LogInformation("Removed {Count} files of an earlier attempt from {Folder}", stale.Count, shardsFolder);
        }
    }

    private async Task ReportProgressAsync(StageContext context, StagingCounters counters, TimeSpan interval, CancellationToken stop)
    {
        while (true)
        {
            try
            {
                await Task.Delay(interval, stop);
                var bytes = counters.SourceBytesRead;
                double? fraction = counters.SourceBytesTotal is > 0 and var total ? Math.Min(1.0, bytes / (double)total)
                    : counters.FilesTotal is > 0 and var files ? Math.Min(1.0, counters.FilesRead / (double)files)
                    : null;
                var message = $"{counters.ImagesStaged} images staged from {counters.FilesRead} files, {bytes / 1e6:0.0} MB read";
                await context.ReportAsync(new StageProgress(fraction, message, new Dictionary<string, double>
                {
                    ["bytes_read"] = bytes,
                    ["files_read"] = counters.FilesRead,
                    ["images_staged"] = counters.ImagesStaged,
                }), stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                logger.LogWarning(exception, "Could not report staging progress; staging goes on");
            }
        }
    }

    private async Task<ArtifactInfo> PutJsonAsync(Uri uri, Action<Utf8JsonWriter> write, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream();
        await using (var json = new Utf8JsonWriter(content, new JsonWriterOptions
        {
            Indented = true,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            write(json);
        }
        content.Position = 0;
        return await store.PutAsync(uri, content, cancellationToken);
    }

    private async Task<ArtifactInfo> PutBytesAsync(Uri uri, byte[] bytes, List<Uri> written, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(bytes);
        var info = await store.PutAsync(uri, content, cancellationToken);
        written.Add(uri);
        return info;
    }

    private async Task DeleteQuietlyAsync(IEnumerable<Uri> uris)
    {
        foreach (var uri in uris)
        {
            try
            {
                await store.DeleteAsync(uri, CancellationToken.None);
            }
            catch (Exception exception)
            {
                logger.LogWarning(exception, "Could not remove {Artifact} of a failed staging", uri);
            }
        }
    }

    private void DeleteScratch(string scratch)
    {
        try
        {
            Directory.Delete(scratch, recursive: true);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(exception, "Could not remove scratch folder {Scratch}", scratch);
        }
    }
}
