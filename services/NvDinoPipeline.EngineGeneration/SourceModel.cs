using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.EngineGeneration.TensorRt;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Quantization;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>The exported model a job builds from: the local file, its graph, metadata and the profile it is built for.</summary>
internal sealed record SourceModel(Uri OnnxUri, string ModelPath, string Sha256, ModelProto Model, ModelMetadata Metadata, string InputName,
    string OutputName, ShapeProfile Profile)
{
    public required EngineSource Description { get; init; }

    public ImagePreprocessor Preprocessor { get; } = new(Metadata.Preprocessing);

    public int ImageFloats => Profile.Channels * Profile.Height * Profile.Width;

    public int EmbeddingDimension => Metadata.EmbeddingDimension;

    public bool DynamicBatch => Model.Graph!.Input.First(i => i.Name == InputName).Type!.TensorType!.Shape!.Dim[0].DimValue is null or <= 0;

    public EngineProfile Manifest => new(InputName, Profile.MinBatch, Profile.OptBatch, Profile.MaxBatch, Profile.Height, Profile.Width);
}

/// <summary>
/// An int8 job's Q/DQ model and calibration cache (<paramref name="CachePath"/>, holding <paramref name="Table"/>), with
/// the plan it quantised by.
/// </summary>
internal sealed record QuantizationResult(string QdqModelPath, string CachePath, CalibrationTable Table, QuantizationPlan Plan, CalibrationSummary Summary)
{
    /// <summary>Tables of the other calibration methods from the same run, for the fallback; empty when there is none to try.</summary>
    public IReadOnlyList<CalibrationTable> Alternatives { get; init; } = [];
}

/// <summary>The images an artifact is checked on, and how to describe them in the report.</summary>
internal sealed record Verification(IImageSource Source, IReadOnlyList<int> Indices, int Count, string Description, bool HeldOut, bool OwnsSource)
    : IDisposable
{
    public void Dispose()
    {
        if (OwnsSource)
        {
            Source.Dispose();
        }
    }
}
