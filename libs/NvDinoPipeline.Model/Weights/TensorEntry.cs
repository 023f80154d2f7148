using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Weights;

/// <summary>A tensor stored in a checkpoint file, described without reading its data.</summary>
public sealed record TensorEntry(string Name, ScalarType DType, long[] Shape)
{
    public long NumElements => Shape.Aggregate(1L, (a, b) => checked(a * b));

    public override string ToString() => $"{Name} {DType} [{string.Join(", ", Shape)}]";
}

public enum CheckpointFormat
{
    /// <summary>Hugging Face safetensors: u64 header length, JSON header, raw little-endian data.</summary>
    SafeTensors,

    /// <summary>torch.save zip archive (data.pkl plus one file per storage).</summary>
    PyTorch,
}
