using System.Globalization;
using System.Text.RegularExpressions;

namespace NvDinoPipeline.EngineGeneration.TensorRt;

/// <summary>One output tensor from trtexec's <c>--exportOutput</c> file.</summary>
public sealed record TrtexecTensor(string Name, IReadOnlyList<long> Dimensions, float[] Values);

/// <summary>
/// Reads trtexec's <c>--exportOutput</c> JSON: <c>[ { "name" : "output", "dimensions" : "2x384", "values" : [ ... ] } ]</c>.
/// Parsed by pattern rather than as JSON because trtexec prints non-finite values as bare <c>nan</c>/<c>inf</c>.
/// </summary>
public static partial class TrtexecOutput
{
    public static IReadOnlyList<TrtexecTensor> Parse(string text, string source)
    {
        var tensors = new List<TrtexecTensor>();
        foreach (Match match in Tensor().Matches(text))
        {
            var name = match.Groups["name"].Value;
            var dims = match.Groups["dims"].Value.Split('x', StringSplitOptions.RemoveEmptyEntries)
                .Select(d => long.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n
                    : throw new InvalidDataException($"trtexec output '{source}' gives tensor '{name}' the dimensions '{match.Groups["dims"].Value}'."))
                .ToArray();
            var values = match.Groups["values"].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(v => ParseValue(v, name, source))
                .ToArray();
            var expected = dims.Aggregate(1L, (a, d) => a * d);
            if (values.Length != expected)
            {
                throw new InvalidDataException($"trtexec output '{source}' holds {values.Length} values for tensor '{name}' of dimensions {string.Join('x', dims)}.");
            }

            tensors.Add(new TrtexecTensor(name, dims, values));
        }

        if (tensors.Count == 0)
        {
            throw new InvalidDataException($"trtexec output '{source}' holds no tensor.");
        }

        return tensors;
    }

    private static float ParseValue(string text, string name, string source) => text.ToLowerInvariant() switch
    {
        "nan" or "-nan" => float.NaN,
        "inf" or "+inf" => float.PositiveInfinity,
        "-inf" => float.NegativeInfinity,
        _ => float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new InvalidDataException($"trtexec output '{source}' has the value '{text}' in tensor '{name}'."),
    };

    [GeneratedRegex("""\{\s*"name"\s*:\s*"(?<name>[^"]*)"\s*,\s*"dimensions"\s*:\s*"(?<dims>[^"]*)"\s*,\s*"values"\s*:\s*\[(?<values>[^\]]*)\]\s*\}""")]
    private static partial Regex Tensor();
}
