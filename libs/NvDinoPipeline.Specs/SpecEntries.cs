namespace NvDinoPipeline.Specs;

/// <summary>A value being resolved, with where it came from.</summary>
internal sealed record SpecEntry(SpecValue Value, string Source);

/// <summary>The flat key → value map a spec is merged and checked in.</summary>
internal sealed class SpecEntries(Dictionary<string, SpecEntry> entries)
{
    public SpecValue this[string key] => entries[key].Value;

    public long Int(string key) => entries[key].Value.Int;

    public double Number(string key) => entries[key].Value.Number;

    public bool Bool(string key) => entries[key].Value.Bool;

    public string? String(string key) => entries[key].Value.String;

    public IEnumerable<string> Strings(string key) => entries[key].Value.Items.Select(item => item.String ?? "");

    public IReadOnlyList<double> Numbers(string key) => entries[key].Value.Items.Select(item => item.Number).ToList();

    public string Source(string key) => entries[key].Source;

    /// <summary>An error about <paramref name="key"/> that ends with where its value came from.</summary>
    public SpecError Error(string key, string problem) => Describe(key, problem, Source(key));

    public static SpecError Describe(string key, string problem, string source) =>
        new(key, $"{problem} (from {source})") { Source = source };
}
