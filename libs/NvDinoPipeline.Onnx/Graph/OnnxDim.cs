namespace NvDinoPipeline.Onnx;

/// <summary>One dimension of a graph input or output: a fixed size or a named symbolic size ("batch").</summary>
public readonly record struct OnnxDim
{
    private OnnxDim(long? value, string? param)
    {
        Value = value;
        Param = param;
    }

    public long? Value { get; }
    public string? Param { get; }

    public static OnnxDim Fixed(long value) =>
        value >= 0 ? new(value, null) : throw new ArgumentOutOfRangeException(nameof(value), value, "A fixed dimension must be zero or positive.");

    public static OnnxDim Symbolic(string name) =>
        !string.IsNullOrWhiteSpace(name) ? new(null, name) : throw new ArgumentException("A symbolic dimension needs a name.", nameof(name));

    public static implicit operator OnnxDim(long value) => Fixed(value);
    public static implicit operator OnnxDim(string name) => Symbolic(name);

    public override string ToString() => Param ?? Value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?";
}
