using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Inference;

public enum OverlapMode
{
    Auto,
    Always,
    Never,
}

/// <summary>Host settings of the inference worker, bound to the configuration section <c>Inference</c>.</summary>
public sealed class InferenceOptions : IValidatableObject
{
    public const string SectionName = "Inference";

    private const long MiB = 1024 * 1024;

    /// <summary>
    /// Overrides the spec's <c>inference.execution_provider</c> on this host: <c>auto</c>, <c>tensorrt</c>,
    /// <c>cuda</c> or <c>cpu</c>. Empty leaves the choice to the spec.
    /// </summary>
    public string ExecutionProvider { get; set; } = "";

    /// <summary>GPU used by the TensorRT and CUDA execution providers.</summary>
    [Range(0, 64)]
    public int DeviceId { get; set; }

    /// <summary>
    /// Runs a TensorRT engine on a GPU of the same compute capability as the one it was built on but another model
    /// (an A100-80GB for an engine built on an A100-40GB). Off: such an engine is refused, as TensorRT tuned it for the other model.
    /// </summary>
    public bool AllowEngineOnOtherGpuModel { get; set; }

    /// <summary>ONNX Runtime threads per operator; 0 lets ONNX Runtime use every core.</summary>
    [Range(0, 1024)]
    public int IntraOpThreads { get; set; }

    /// <summary>Images read and pre-processed at once; 0 uses every core.</summary>
    [Range(0, 256)]
    public int PreprocessParallelism { get; set; }

    /// <summary>
    /// Whether images are decoded and pre-processed while the model runs: <c>Auto</c> overlaps them unless the model
    /// runs on the CPU with every core (there a pre-processing thread only stalls the model's parallel operators,
    /// so the two take turns); <c>Always</c> and <c>Never</c> force the choice.
    /// </summary>
    public OverlapMode OverlapPreprocessing { get; set; } = OverlapMode.Auto;

    /// <summary>Batches pre-processed ahead of the model, so decoding overlaps model execution.</summary>
    [Range(1, 16)]
    public int PreparedBatches { get; set; } = 2;

    /// <summary>Result batches being published at once (each waits for the broker's confirm).</summary>
    [Range(1, 256)]
    public int PublishesInFlight { get; set; } = 8;

    /// <summary>A file larger than this is reported as unreadable without being read into memory.</summary>
    [Range(1, 2L * 1024 * MiB - 1)]
    public long MaxImageBytes { get; set; } = 256 * MiB;

    /// <summary>An image whose header claims more pixels is reported as unreadable before it is decoded.</summary>
    [Range(1, 1L << 32)]
    public long MaxImagePixels { get; set; } = 100_000_000;

    /// <summary>Deployed models the on-line path keeps loaded (one per pipeline), least recently used unloaded first.</summary>
    [Range(1, 64)]
    public int OnlineModels { get; set; } = 2;

    /// <summary>Most images one <c>EmbedImages</c> request may carry.</summary>
    [Range(1, 100_000)]
    public int OnlineMaxImages { get; set; } = 256;

    /// <summary>Images the on-line path runs through the model at once.</summary>
    [Range(1, 1024)]
    public int OnlineBatchSize { get; set; } = 16;

    /// <summary><c>EmbedImages</c> requests served at once by this process.</summary>
    [Range(1, 256)]
    public int OnlineConcurrentRequests { get; set; } = 4;

    /// <summary>
    /// URI prefixes (<c>s3://bucket/images/</c>, <c>file:///data/</c>) that on-line requests may read images from.
    /// Empty allows the artifact store's root only, so a request cannot make the worker read arbitrary files.
    /// </summary>
    public List<string> OnlineAllowedPrefixes { get; set; } = [];

    /// <summary>What <see cref="OverlapPreprocessing"/> means for a model on <paramref name="provider"/>.</summary>
    public bool Overlaps(ExecutionProviderKind provider) => OverlapPreprocessing switch
    {
        OverlapMode.Always => true,
        OverlapMode.Never => false,
        _ => provider != ExecutionProviderKind.Cpu || (IntraOpThreads > 0 && IntraOpThreads < Environment.ProcessorCount),
    };

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (ExecutionProvider.Length > 0 && !ExecutionProviders.Names.Contains(ExecutionProvider))
        {
            yield return new ValidationResult(
                $"{SectionName}:{nameof(ExecutionProvider)} is '{ExecutionProvider}'; use one of {string.Join(", ", ExecutionProviders.Names)} or leave it empty.",
                [nameof(ExecutionProvider)]);
        }
        foreach (var prefix in OnlineAllowedPrefixes)
        {
            if (!Uri.TryCreate(prefix, UriKind.Absolute, out var uri) || uri.Scheme is not ("file" or "s3") || !prefix.EndsWith('/'))
            {
                yield return new ValidationResult(
                    $"{SectionName}:{nameof(OnlineAllowedPrefixes)} holds '{prefix}'; each entry must be a file:// or s3:// folder URI ending with '/'.",
                    [nameof(OnlineAllowedPrefixes)]);
            }
        }
    }
}
