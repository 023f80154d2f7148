using System.Globalization;

namespace NvDinoPipeline.Onnx.EpContext;

/// <summary>
/// TensorRT's NV_TENSORRT_VERSION, as trtexec prints it ("[TensorRT v100300]"), <c>getInferLibVersion</c> returns it
/// and calibration caches carry it: major·1000 + minor·100 + patch up to TensorRT 9, major·10000 + minor·100 + patch
/// from TensorRT 10.
/// </summary>
public static class TensorRtVersion
{
    public static string Decode(long encoded) => encoded >= 100_000
        ? string.Create(CultureInfo.InvariantCulture, $"{encoded / 10_000}.{encoded / 100 % 100}.{encoded % 100}")
        : string.Create(CultureInfo.InvariantCulture, $"{encoded / 1000}.{encoded / 100 % 10}.{encoded % 100}");

    /// <summary><c>10.3.0</c> → 100300, <c>8.6.1</c> → 8601; a fourth (build) part is ignored.</summary>
    public static long Encode(string version)
    {
        var parts = Parse(version);
        return parts.Major >= 10 ? parts.Major * 10_000L + parts.Minor * 100 + parts.Patch : parts.Major * 1000L + parts.Minor * 100 + parts.Patch;
    }

    /// <summary>True when engines of one version load in the other: the same major, minor and patch (the build number does not matter).</summary>
    public static bool SameRelease(string a, string b) => Parse(a) == Parse(b);

    private static (int Major, int Minor, int Patch) Parse(string version)
    {
        var parts = version.Split('.');
        if (parts.Length is < 3 or > 4 || !parts.All(p => p.Length > 0 && p.All(char.IsAsciiDigit)))
        {
            throw new FormatException($"'{version}' is not a TensorRT version such as 10.3.0.");
        }

        return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture), int.Parse(parts[2], CultureInfo.InvariantCulture));
    }
}
