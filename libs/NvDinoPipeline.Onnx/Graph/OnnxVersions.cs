namespace NvDinoPipeline.Onnx;

public static class OnnxVersions
{
    /// <summary>The IR version that ships with each default-domain opset (onnx.helper VERSION_TABLE).</summary>
    public static long IrVersionForOpset(int opset) => opset switch
    {
        < 1 => throw new ArgumentOutOfRangeException(nameof(opset), opset, "An opset version starts at 1."),
        <= 8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        _ => 11,
    };
}
