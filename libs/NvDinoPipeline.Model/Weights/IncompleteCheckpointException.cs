using System.Globalization;

namespace NvDinoPipeline.Model.Weights;

/// <summary>A checkpoint provides only part of the backbone and partial loading was not allowed.</summary>
public sealed class IncompleteCheckpointException(string path, string keyPrefix, double loadedFraction, IReadOnlyList<string> missing)
    : Exception(Describe(path, keyPrefix, loadedFraction, missing))
{
    private const int Shown = 5;

    public string CheckpointPath { get; } = path;

    /// <summary>Share of the backbone's parameter elements the checkpoint provides, 0 to 1.</summary>
    public double LoadedFraction { get; } = loadedFraction;

    public IReadOnlyList<string> Missing { get; } = missing;

    private static string Describe(string path, string keyPrefix, double loadedFraction, IReadOnlyList<string> missing)
    {
        var shown = string.Join(", ", missing.Take(Shown));
        var more = missing.Count > Shown ? $" and {missing.Count - Shown} more" : "";
        var percent = (loadedFraction * 100).ToString("0.##", CultureInfo.InvariantCulture);
        return $"Checkpoint '{path}' provides {percent}% of the backbone's parameters (key prefix '{keyPrefix}'); " +
               $"{missing.Count} missing: {shown}{more}.";
    }
}
