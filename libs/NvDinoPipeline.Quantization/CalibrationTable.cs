using System.Text.Json;
using System.Text.Json.Serialization;

namespace NvDinoPipeline.Quantization;

/// <summary>What calibration measured for one activation, and the symmetric clipping threshold chosen from it.</summary>
public sealed record TensorRange(double Min, double Max, double Amax)
{
    /// <summary>The int8 scale for a symmetric grid over [−Amax, Amax].</summary>
    [JsonIgnore]
    public float Scale => (float)(Math.Max(Amax, 1e-8) / 127.0);
}

/// <summary>
/// The calibration cache: every quantised activation's range, and how it was measured. Reusing the file skips
/// calibration for the same model (matched by SHA-256).
/// </summary>
public sealed record CalibrationTable
{
    public const string CurrentFormat = "nvdino.calibration/1";

    public string Format { get; init; } = CurrentFormat;

    public required string Method { get; init; }

    public double? Percentile { get; init; }

    public required int Images { get; init; }

    public required int Batches { get; init; }

    /// <summary>SHA-256 (hex) of the float model the ranges were measured on.</summary>
    public required string ModelSha256 { get; init; }

    public required IReadOnlyDictionary<string, TensorRange> Tensors { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a cache file; the message names <paramref name="source"/> and what is wrong.</summary>
    public static CalibrationTable FromJson(string json, string source)
    {
        CalibrationTable? table;
        try
        {
            table = JsonSerializer.Deserialize<CalibrationTable>(json, Json);
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"Calibration cache '{source}' is not valid JSON: {exception.Message}", exception);
        }

        if (table is null || table.Tensors is null)
        {
            throw new InvalidDataException($"Calibration cache '{source}' is empty.");
        }

        if (table.Format != CurrentFormat)
        {
            throw new InvalidDataException($"Calibration cache '{source}' has format '{table.Format}'; this version reads '{CurrentFormat}'.");
        }

        foreach (var (name, range) in table.Tensors)
        {
            if (range is null || !double.IsFinite(range.Amax) || range.Amax < 0)
            {
                throw new InvalidDataException($"Calibration cache '{source}' has no usable range for tensor '{name}'.");
            }
        }

        return table;
    }

    /// <summary>The tensors of <paramref name="plan"/> this table has no range for.</summary>
    public IReadOnlyList<string> Missing(QuantizationPlan plan) =>
        [.. plan.ActivationTensors.Where(t => !Tensors.ContainsKey(t))];
}
