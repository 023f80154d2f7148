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
        IReadOnlyList<CalibrationTable> alternatives = [];
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
            // The fallback's methods come from the same run: only histograms are added when minmax was asked for.
            CalibrationMethod[] methods = job.Host.CalibrationFallback
                ? [c.Method, .. FallbackOrder.Where(m => m != c.Method)]
                : [c.Method];
            var progress = new LatestProgress();
            var calibrating = Task.Run(() => ActivationCalibrator.CalibrateEach(source.ModelPath, plan, batches, calibration, methods,
                Path.Combine(job.Work, "calibration"), progress, cancellationToken), cancellationToken);
            while (!calibrating.IsCompleted)
            {
                await Task.WhenAny(calibrating, Task.Delay(TimeSpan.FromSeconds(1), cancellationToken));
                await job.ReportAsync(0.05 + 0.5 * progress.Value,
                    $"calibrating ({c.Method.ToSpecName()}) on {split.Calibration.Count} image(s): {progress.Value:P0}", cancellationToken);
            }

            try
            {
                var tables = await calibrating;
                table = tables[0];
                alternatives = tables.Skip(1).ToList();
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
        return new QuantizationResult(qdqPath, cachePath, table, plan, new CalibrationSummary
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
        })
        {
            Alternatives = alternatives,
        };
    }

    /// <summary>The methods tried after the spec's, most robust to a trained ViT's activation outliers first.</summary>
    private static readonly CalibrationMethod[] FallbackOrder = [CalibrationMethod.Percentile, CalibrationMethod.MinMax, CalibrationMethod.Entropy];

    /// <summary>
    /// With <c>EngineGeneration:CalibrationFallback</c>: checks the Q/DQ model on the verification images with ONNX
    /// Runtime; when it misses the int8 bound, quantises with each alternative method's ranges (same calibration run)
    /// and keeps the first that passes. When none does, the spec's method is kept and the target's check fails the
    /// job, naming every method tried.
    /// </summary>
    public async Task<QuantizationResult> FallBackAsync(EngineJob job, SourceModel source, QuantizationResult quantization, Verification verification,
        float[] verificationInput, float[] reference, CancellationToken cancellationToken)
    {
        if (quantization.Alternatives.Count == 0)
        {
            return quantization;
        }

        var attempts = new List<CalibrationAttempt>();
        async Task<bool> CheckAsync(string qdqPath, CalibrationTable table)
        {
            var actual = await OnnxRuns.StepAsync(() => OnnxRuns.Embed(qdqPath, verificationInput, verification.Count, source, job.Host.IntraOpThreads),
                $"run the {table.Method} Q/DQ model of {source.OnnxUri}", cancellationToken);
            var fidelity = FidelityCheck.Judge(job, verification, reference, actual, source.EmbeddingDimension, logger,
                $"Q/DQ model with {table.Method} ranges");
            attempts.Add(new CalibrationAttempt(table.Method, table.Percentile, fidelity.MeanCosine, fidelity.MinCosine, fidelity.Passed));
            return fidelity.Passed;
        }

        var requested = quantization.Table;
        await job.ReportAsync(0.6, $"checking the {requested.Method} Q/DQ model on {verification.Count} held-out image(s)", cancellationToken);
        if (await CheckAsync(quantization.QdqModelPath, requested))
        {
            return quantization with { Summary = quantization.Summary with { Attempts = attempts } };
        }

        foreach (var alternative in quantization.Alternatives)
        {
            await job.ReportAsync(0.6, $"{requested.Method} ranges missed the int8 bound; trying {alternative.Method}", cancellationToken);
            var candidate = Path.Combine(job.Work, $"model.int8.{alternative.Method}.onnx");
            OnnxModelWriter.Save(QdqQuantizer.Quantize(source.Model, quantization.Plan, alternative), candidate);
            if (!await CheckAsync(candidate, alternative))
            {
                File.Delete(candidate);
                File.Delete(candidate + ".data");
                continue;
            }

            File.Move(candidate, quantization.QdqModelPath, overwrite: true);
            if (File.Exists(candidate + ".data"))
            {
                File.Move(candidate + ".data", quantization.QdqModelPath + ".data", overwrite: true);
            }

            await File.WriteAllTextAsync(quantization.CachePath, alternative.ToJson(), cancellationToken);
            logger.LogWarning(
                "The spec's {Requested} calibration missed the int8 bound on {Images} held-out image(s) (mean cosine {Cosine:F5} < {Bound}); " +
                "{Method} ranges from the same calibration passed (mean cosine {Kept:F5}) and are the ones built",
                requested.Method, verification.Count, attempts[0].MeanCosine, job.Host.MinMeanCosineInt8, alternative.Method, attempts[^1].MeanCosine);
            return quantization with
            {
                Table = alternative,
                Summary = quantization.Summary with
                {
                    Method = alternative.Method,
                    Percentile = alternative.Percentile,
                    RequestedMethod = requested.Method,
                    Attempts = attempts,
                },
            };
        }

        logger.LogWarning("No calibration method reached the int8 bound on {Images} held-out image(s): {Attempts}", verification.Count,
            string.Join(", ", attempts.Select(a => $"{a.Method} {a.MeanCosine:F5}")));
        return quantization with { Summary = quantization.Summary with { Attempts = attempts } };
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
