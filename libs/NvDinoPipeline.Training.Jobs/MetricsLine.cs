using System.Text.Json;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Training.Jobs;

/// <summary>One line of <c>metrics.jsonl</c>: an epoch's mean figures as a flat JSON object.</summary>
public static class MetricsLine
{
    public static string Format(EpochSummary summary)
    {
        var values = new SortedDictionary<string, object>(StringComparer.Ordinal) { ["time"] = DateTimeOffset.UtcNow.ToString("O") };
        foreach (var (name, value) in summary.Metrics)
            values[name] = double.IsFinite(value) ? value : value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return JsonSerializer.Serialize(values);
    }

    /// <summary>The epoch a line records, or null for a line that is not a metrics record.</summary>
    public static int? EpochOf(string line)
    {
        if (string.IsNullOrWhiteSpace(line))
            return null;
        try
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.TryGetProperty(TrainingMetrics.Epoch, out var epoch) && epoch.TryGetInt32(out var value) ? value : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
