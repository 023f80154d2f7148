namespace NvDinoPipeline.Onnx;

/// <summary>One state-dict tensor as row-major float32 values and its shape (PyTorch layout).</summary>
public sealed record NamedWeight(float[] Data, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
}
