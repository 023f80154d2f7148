using System.Globalization;
using System.Text.RegularExpressions;

namespace NvDinoPipeline.Testing;

/// <summary>One sample of a scrape: metric name, labels, value.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>
/// A strict reader of Prometheus' text exposition format 0.0.4 (what a Prometheus server accepts): <c># HELP</c> and
/// <c># TYPE</c> lines, then samples <c>name{label="value",...} value [timestamp]</c>, every sample belonging to a
/// declared family (a histogram's <c>_bucket</c>, <c>_sum</c>, <c>_count</c>). Anything else is an error naming the line.
/// </summary>
public static partial class PrometheusText
{
    public static (IReadOnlyDictionary<string, string> Types, IReadOnlyList<PrometheusSample> Samples) Parse(string text)
    {
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var samples = new List<PrometheusSample>();
        var number = 0;
        foreach (var line in text.Split('\n'))
        {
            number++;
            if (line.Length == 0)
                continue;
            if (line.StartsWith('#'))
            {
                var comment = Comment().Match(line);
                if (comment.Success && comment.Groups["kind"].Value == "TYPE")
                {
                    var type = comment.Groups["rest"].Value;
                    if (type is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                        throw new FormatException($"line {number}: unknown metric type '{type}'");
                    if (!types.TryAdd(comment.Groups["name"].Value, type))
                        throw new FormatException($"line {number}: a second TYPE for {comment.Groups["name"].Value}");
                }
                continue;
            }
            var sample = Sample().Match(line);
            if (!sample.Success)
                throw new FormatException($"line {number}: not a sample: {line}");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match label in Label().Matches(sample.Groups["labels"].Value))
            {
                if (!labels.TryAdd(label.Groups["key"].Value, Unescape(label.Groups["value"].Value)))
                    throw new FormatException($"line {number}: label {label.Groups["key"].Value} twice");
            }
            var name = sample.Groups["name"].Value;
            if (!types.ContainsKey(FamilyOf(name, types)))
                throw new FormatException($"line {number}: sample {name} has no TYPE line");
            samples.Add(new PrometheusSample(name, labels, ParseValue(sample.Groups["value"].Value, number)));
        }
        return (types, samples);
    }

    private static string FamilyOf(string name, Dictionary<string, string> types)
    {
        foreach (var suffix in (string[])["_bucket", "_sum", "_count"])
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal) && types.TryGetValue(name[..^suffix.Length], out var type)
                && type is "histogram" or "summary")
                return name[..^suffix.Length];
        }
        return name;
    }

    private static double ParseValue(string value, int line) => value switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed)
            ? parsed
            : throw new FormatException($"line {line}: '{value}' is not a number"),
    };

    private static string Unescape(string value) => value.Replace("\\\"", "\"", StringComparison.Ordinal)
        .Replace("\\n", "\n", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal);

    [GeneratedRegex(@"^# (?<kind>HELP|TYPE) (?<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?<rest>.*)$")]
    private static partial Regex Comment();

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>([a-zA-Z_][a-zA-Z0-9_]*=""([^""\\]|\\.)*"",?)*)\})? (?<value>\S+)( -?\d+)?$")]
    private static partial Regex Sample();

    [GeneratedRegex(@"(?<key>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<value>([^""\\]|\\.)*)""")]
    private static partial Regex Label();
}
