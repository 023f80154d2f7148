using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Specs;

namespace NvDinoPipeline.Inference;

/// <summary>The <c>inference.*</c> keys of a job's spec.</summary>
public sealed record InferenceSpec(int BatchSize, string ExecutionProvider, string OutputFormat, string? OnnxFile, string? TrtEngine)
{
    public static InferenceSpec From(ResolvedSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        try
        {
            var batchSize = spec.TryGet<int>("inference.batch_size", out var batch) ? batch : 8;
            var provider = spec.TryGet<string>("inference.execution_provider", out var p) ? p : ExecutionProviders.Auto;
            var format = spec.TryGet<string>("inference.output_format", out var f) ? f : "csv";
            spec.TryGet<string>("inference.onnx_file", out var onnxFile);
            spec.TryGet<string>("inference.trt_engine", out var trtEngine);
            // Batch size, provider and format were checked by the spec rules when the pipeline started.
            return new InferenceSpec(batchSize, provider, format, onnxFile, trtEngine);
        }
        catch (InvalidCastException exception)
        {
            throw new StageInputException($"The inference spec is not valid: {exception.Message}", exception);
        }
    }
}
