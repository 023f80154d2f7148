using System.ComponentModel.DataAnnotations;
using NvDinoPipeline.Onnx;

namespace NvDinoPipeline.Export;

/// <summary>How the export worker validates what it writes, bound to the configuration section <c>Export</c>.</summary>
public sealed class ExportOptions
{
    public const string SectionName = "Export";

    /// <summary>Largest element difference between ONNX Runtime and TorchSharp (fp32) an export may show.</summary>
    [Range(0.0, 1.0)]
    public double MaxAbsError { get; set; } = 1e-4;

    /// <summary>Least cosine similarity between the two models' embeddings of any image.</summary>
    [Range(0.0, 1.0)]
    public double MinCosine { get; set; } = 0.99999;

    /// <summary>The larger batch of a dynamic-batch export's parity check (the other is 1).</summary>
    [Range(2, 256)]
    public int ValidationBatchSize { get; set; } = 4;

    /// <summary>ONNX Runtime threads per operator during validation; 0 uses every core.</summary>
    [Range(0, 1024)]
    public int OnnxRuntimeThreads { get; set; }

    /// <summary>
    /// Weight bytes above which the model's tensors go to <c>model.onnx.data</c> beside <c>model.onnx</c> (ONNX external
    /// data); protobuf cannot hold a model over 2 GiB, so vit_g is always written this way.
    /// </summary>
    [Range(1024L, 2_000_000_000L)]
    public long ExternalDataThresholdBytes { get; set; } = new OnnxSaveOptions().ExternalDataThresholdBytes;
}
