using Microsoft.Extensions.Logging;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>
/// An int8 job's calibration and quantisation: the plan (layers_precision's float layers excluded), the ranges
/// (measured on the job's images, or read from <c>cal_cache_file</c> for the same model), and the Q/DQ model.
/// </summary>
internal sealed class Int8Calibration(IArtifactStore store, TimeProvider clock, ILogger logger)
{
    public async Task<QuantizationResult> QuantizeAsync(EngineJob job, SourceModel source, IImageSource? images, SampleSplit? split,
        CancellationToken cancellationToken)
    {
        var settings = job.Settings;
        var excluded = settings.LayersPrecision.Where(l => l.Precision != Precisions.Int8).Select(l => l.Layer).ToHashSet(StringComparer.Ordinal);
        if (excluded.Contains("*"))
        {
            excluded.UnionWith(source.Model.Graph!.Node.Select(n => n.Name ?? ""));
            excluded.ExceptWith(settings.LayersPrecision.Where(l => l.Precision == Precisions.Int8).Select(l => l.Layer));
        }

        var plan = QuantizationPlan.Create(source.Model, new QuantizationOptions { ExcludedNodes = excluded });
        if (plan.Nodes.Count == 0)
        {
            throw new StageInputException(
                $"int8 has nothing to quantise in {source.OnnxUri}: it has no MatMul, Gemm or Conv node with a constant weight outside layers_precision's float layers.");
        }

        var c = settings.Calibration;
        var cachePath = Path.Combine(job.Work, EngineArtifacts.CalibrationCache);
        Uri? sharedCache = c.CacheFile is { } cacheFile ? EngineLocations.ObjectUri(cacheFile, relativeTo: null, "gen_trt_engine.tensorrt.calibration.cal_cache_file") : null;
        CalibrationTable? table = null;
        var fromCache = false;
        if (sharedCache is not null && await store.GetInfoAsync(sharedCache, cancellationToken) is not null)
        {
            table = await ReadCacheAsync(sharedCache, source, plan, cancellationToken);
            fromCache = true;
            logger.LogInformation("Reusing the calibration cache {CacheUri} ({Method}, {Images} images)", sharedCache, table.Method, table.Images);
        }

        var clockStart = clock.GetTimestamp();
        string imagesDescription;
        if (table is null)
        {
            if (images is null || split is null)
            {
                throw new StageInputException(
                    "int8 needs calibration images, and this job has none: the command carries no staged dataset and " +
                    "gen_trt_engine.tensorrt.calibration.cal_image_dir is empty (a cal_cache_file from an earlier calibration of this model also works).");
            }

            var wanted = c.BatchSize * c.Batches;
            var batchSize = source.Profile.MinBatch == source.Profile.MaxBatch && !source.DynamicBatch ? source.Profile.MinBatch : c.BatchSize;
            var batches = CalibrationBatches(images, split.Calibration, batchSize, !source.DynamicBatch, source);
            if (split.Calibration.Count < wanted)
            {
                logger.LogWarning("Calibrating on {Images} images ({Batches} batches of {BatchSize}); the spec asks for {Wanted} but the dataset has {Count}",
                    split.Calibration.Count, batches.Count, batchSize, wanted, images.Count);
            }

            var calibration = new CalibrationSettings
            {
                Method = c.Method,
                Percentile = c.Percentile,
                HistogramBins = job.Host.HistogramBins,
                MemoryBudgetBytes = job.Host.CalibrationMemoryBudgetMiB * 1024L * 1024,
                IntraOpThreads = job.Host.IntraOpThreads,
            };
            var progress = new LatestProgress();
            var calibrating = Task.Run(() => ActivationCalibrator.Calibrate(source.ModelPath, plan, batches, calibration,
                Path.Combine(job.Work, "calibration"), progress, cancellationToken), cancellationToken);
            while (!calibrating.IsCompleted)
            {
                await Task.WhenAny(calibrating, Task.Delay(TimeSpan.FromSeconds(1), cancellationToken));
                await job.ReportAsync(0.05 + 0.5 * progress.Value,
                    $"calibrating ({c.Method.ToSpecName()}) on {split.Calibration.Count} image(s): {progress.Value:P0}", cancellationToken);
            }

            try
            {
                table = await calibrating;
            }
            catch (Exception exception) when (exception is InvalidDataException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
            {
                throw new StageInputException($"Calibration of {source.OnnxUri} failed: {exception.Message}", exception);
            }

            imagesDescription = images.Description;
        }
        else
        {
            imagesDescription = $"calibration cache {sharedCache}";
        }

        await File.WriteAllTextAsync(cachePath, table.ToJson(), cancellationToken);
        await job.ReportAsync(0.58, $"writing Q/DQ nodes around {plan.Nodes.Count} MatMul/Gemm/Conv nodes", cancellationToken);
        var qdqPath = Path.Combine(job.Work, EngineArtifacts.QdqModel);
        var quantized = QdqQuantizer.Quantize(source.Model, plan, table);
        OnnxModelWriter.Save(quantized, qdqPath);
        var seconds = clock.GetElapsedTime(clockStart).TotalSeconds;
        logger.LogInformation("Quantised {Nodes} nodes of {OnnxUri} with {Method} ranges in {Seconds:F1} s ({KeptInFloat} kept in float)",
            plan.Nodes.Count, source.OnnxUri, table.Method, seconds, plan.KeptInFloat.Count);
        return new QuantizationResult(qdqPath, cachePath, new CalibrationSummary
        {
            Method = table.Method,
            Percentile = table.Percentile,
            Images = table.Images,
            Batches = table.Batches,
            Source = imagesDescription,
            CacheUri = (fromCache ? sharedCache! : job.Output(EngineArtifacts.CalibrationCache)).AbsoluteUri,
            FromCache = fromCache,
            QuantizedNodes = plan.Nodes.Count,
            KeptInFloat = plan.KeptInFloat,
            Seconds = seconds,
        });
    }

    private async Task<CalibrationTable> ReadCacheAsync(Uri uri, SourceModel source, QuantizationPlan plan, CancellationToken cancellationToken)
    {
        string json;
        await using (var stream = await store.OpenReadAsync(uri, cancellationToken))
        using (var reader = new StreamReader(stream))
        {
            json = await reader.ReadToEndAsync(cancellationToken);
        }

        CalibrationTable table;
        try
        {
            table = CalibrationTable.FromJson(json, uri.ToString());
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }

        if (table.ModelSha256 != source.Sha256)
        {
            throw new StageInputException(
                $"Calibration cache {uri} was made for another model (SHA-256 {table.ModelSha256}, this one is {source.Sha256}); " +
                "remove gen_trt_engine.tensorrt.calibration.cal_cache_file or point it at a new file to calibrate again.");
        }

        var missing = table.Missing(plan);
        if (missing.Count > 0)
        {
            throw new StageInputException(
                $"Calibration cache {uri} has no range for {missing.Count} tensor(s) this build quantises (e.g. '{missing[0]}'); " +
                "layers_precision changed since it was made. Point cal_cache_file at a new file to calibrate again.");
        }

        return table;
    }

    private static List<CalibrationBatch> CalibrationBatches(IImageSource images, IReadOnlyList<int> indices, int batchSize, bool fixedBatch, SourceModel source)
    {
        var batches = new List<CalibrationBatch>();
        for (var start = 0; start < indices.Count; start += batchSize)
        {
            var chunk = indices.Skip(start).Take(batchSize).ToList();
            if (fixedBatch)
            {
                // A fixed-batch model takes only full batches: the last one repeats its images.
                for (var i = 0; chunk.Count < batchSize; i++)
                {
                    chunk.Add(chunk[i]);
                }
            }

            var data = CalibrationImages.Batch(images, chunk, source.Preprocessor);
            batches.Add(new CalibrationBatch(data, [chunk.Count, source.Profile.Channels, source.Profile.Height, source.Profile.Width]));
        }

        return batches;
    }

    private sealed class LatestProgress : IProgress<double>
    {
        private double _value;

        public double Value => Volatile.Read(ref _value);

        public void Report(double value) => Volatile.Write(ref _value, value);
    }

}
