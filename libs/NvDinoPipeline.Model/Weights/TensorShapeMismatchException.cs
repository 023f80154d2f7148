namespace NvDinoPipeline.Model.Weights;

/// <summary>A checkpoint tensor does not fit the model parameter of the same name.</summary>
public sealed class TensorShapeMismatchException(string tensorName, long[] checkpointShape, long[] modelShape)
    : InvalidOperationException(
        $"Checkpoint tensor '{tensorName}' has shape [{string.Join(", ", checkpointShape)}] " +
        $"but the model expects [{string.Join(", ", modelShape)}].")
{
    public string TensorName { get; } = tensorName;
    public IReadOnlyList<long> CheckpointShape { get; } = checkpointShape;
    public IReadOnlyList<long> ModelShape { get; } = modelShape;
}
