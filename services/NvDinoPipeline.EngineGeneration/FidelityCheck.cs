using System.Globalization;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Quantization;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>Judges an artifact's embeddings against ONNX Runtime fp32 by the job's precision, and words the failure when it falls short.</summary>
internal static class FidelityCheck
{
    public static FidelitySummary Judge(EngineJob job, Verification verification, float[] reference, float[] actual, int dimension, ILogger logger,
        string what = "Artifact")
    {
        var report = EmbeddingFidelity.Compare(reference, actual, dimension);
        var (bound, value, figure) = job.Settings.Precision switch
        {
            Precisions.Int8 => ("mean_cosine", job.Host.MinMeanCosineInt8, report.MeanCosine),
            Precisions.Fp16 => ("min_cosine", job.Host.MinCosineFp16, report.MinCosine),
            _ => ("min_cosine", job.Host.MinCosineFp32, report.MinCosine),
        };
        logger.LogInformation("{What} against ONNX Runtime fp32: {Report}", what, report.ToString());
        return new FidelitySummary
        {
            Images = verification.Description,
            ImageCount = report.Rows,
            HeldOut = verification.HeldOut,
            MeanCosine = report.MeanCosine,
            MinCosine = report.MinCosine,
            MaxAbsError = report.MaxAbsError,
            Bound = bound,
            BoundValue = value,
            Passed = figure >= value,
        };
    }

    public static string Failure(EngineJob job, EngineManifest manifest, QuantizationResult? quantization, Uri report)
    {
        var f = manifest.Fidelity;
        var ic = CultureInfo.InvariantCulture;
        var figure = f.Bound == "mean_cosine" ? f.MeanCosine : f.MinCosine;
        var measured = string.Create(ic,
            $"The {manifest.Target} {manifest.Precision} artifact's embeddings are too far from ONNX Runtime fp32 on {f.ImageCount} {(f.HeldOut ? "held-out " : "")}image(s): ")
            + string.Create(ic, $"{f.Bound.Replace('_', ' ')} {figure:F5} < {f.BoundValue} (mean cosine {f.MeanCosine:F5}, min cosine {f.MinCosine:F5}, max |Δ| {f.MaxAbsError:G3}). ")
            + $"Report: {report}.";
        if (quantization is null)
        {
            return measured + " Keep sensitive layers in fp32 with gen_trt_engine.tensorrt.layers_precision (e.g. the LayerNormalization and Softmax nodes), or build in fp32.";
        }

        var tried = quantization.Summary.Attempts;
        var calibration = tried.Count > 1
            ? string.Create(ic, $" Calibration over {quantization.Summary.Images} image(s); every method was tried on the same run, none passed: ")
                + string.Join(", ", tried.Select(a => string.Create(ic, $"{a.Method} mean cosine {a.MeanCosine:F5}"))) + "."
                + " Try more cal_batches, a higher percentile, "
            : string.Create(ic, $" Calibration: {quantization.Summary.Method} over {quantization.Summary.Images} image(s).")
                + " Try another gen_trt_engine.tensorrt.calibration.method (minmax, percentile, entropy), more cal_batches, a higher percentile, ";
        return measured + calibration
            + "keeping the most sensitive MatMuls in float with layers_precision \"<node>:fp32\", or data_type fp32/fp16.";
    }
}
