using System.Globalization;
using System.Text;

namespace NvDinoPipeline.Quantization;

/// <summary>
/// TensorRT's INT8 calibration cache (the text its calibrators write and read back, and ONNX Runtime's TensorRT
/// provider reads as a native calibration table): a header <c>TRT-&lt;NV_TENSORRT_VERSION&gt;-&lt;calibrator&gt;</c>,
/// then one <c>tensor: scale</c> line per tensor, the scale (amax / 127) as the hex bits of an IEEE-754 float32.
/// TensorRT skips a cache whose header names another version or calibrator, so the header carries the TensorRT
/// version of the build host and the calibrator trtexec reads caches with (entropy calibration 2).
/// </summary>
public static class TensorRtCalibrationCache
{
    public const string Calibrator = "EntropyCalibration2";

    /// <param name="encodedVersion">NV_TENSORRT_VERSION of the TensorRT that reads the cache (100300 for 10.3.0).</param>
    public static string Write(CalibrationTable table, long encodedVersion)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(encodedVersion);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"TRT-{encodedVersion}-{Calibrator}\n");
        foreach (var (name, range) in table.Tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            if (name.Contains(':') || name.Contains('\n'))
            {
                throw new ArgumentException($"Tensor '{name}' cannot be written to a TensorRT calibration cache: its lines are 'name: scale'.", nameof(table));
            }

            text.Append(CultureInfo.InvariantCulture, $"{name}: {BitConverter.SingleToUInt32Bits(range.Scale):x8}\n");
        }

        return text.ToString();
    }

    /// <summary>Reads a cache: its header and each tensor's scale.</summary>
    /// <exception cref="InvalidDataException">Not a TensorRT calibration cache; the message names <paramref name="source"/> and the line.</exception>
    public static (long EncodedVersion, string Calibrator, IReadOnlyDictionary<string, float> Scales) Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lines = text.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var header = lines.Length > 0 ? lines[0].Split('-', 3) : [];
        if (header.Length != 3 || header[0] != "TRT" || !long.TryParse(header[1], NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            throw new InvalidDataException($"'{source}' is not a TensorRT calibration cache: it does not start with 'TRT-<version>-<calibrator>'.");
        }

        var scales = new Dictionary<string, float>(StringComparer.Ordinal);
        for (var i = 1; i < lines.Length; i++)
        {
            var colon = lines[i].LastIndexOf(':');
            if (colon <= 0 || !uint.TryParse(lines[i].AsSpan(colon + 1).Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var bits))
            {
                throw new InvalidDataException($"Line {i + 1} of TensorRT calibration cache '{source}' is not 'tensor: <hex scale>': '{lines[i]}'.");
            }

            var scale = BitConverter.UInt32BitsToSingle(bits);
            if (!float.IsFinite(scale) || scale < 0)
            {
                throw new InvalidDataException($"Line {i + 1} of TensorRT calibration cache '{source}' gives '{lines[i][..colon]}' the scale {scale}.");
            }

            scales[lines[i][..colon].Trim()] = scale;
        }

        return (version, header[2], scales);
    }
}
