namespace NvDinoPipeline.Quantization;

/// <summary>How an activation's clipping range is chosen from what calibration observed.</summary>
public enum CalibrationMethod
{
    /// <summary>The largest magnitude seen: no clipping, coarsest resolution.</summary>
    MinMax,

    /// <summary>The given percentile of the magnitudes: clips the rarest outliers.</summary>
    Percentile,

    /// <summary>The threshold whose 8-bit histogram loses least information (KL divergence), as TensorRT's entropy calibrator.</summary>
    Entropy,
}

public static class CalibrationMethods
{
    /// <summary>The spec names: <c>minmax</c>, <c>percentile</c>, <c>entropy</c>.</summary>
    public static CalibrationMethod Parse(string name) => name switch
    {
        "minmax" => CalibrationMethod.MinMax,
        "percentile" => CalibrationMethod.Percentile,
        "entropy" => CalibrationMethod.Entropy,
        _ => throw new ArgumentException($"Calibration method '{name}' is not known; use minmax, percentile or entropy.", nameof(name)),
    };

    public static string ToSpecName(this CalibrationMethod method) => method switch
    {
        CalibrationMethod.MinMax => "minmax",
        CalibrationMethod.Percentile => "percentile",
        CalibrationMethod.Entropy => "entropy",
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
    };
}
