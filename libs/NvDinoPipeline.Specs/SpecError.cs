namespace NvDinoPipeline.Specs;

/// <summary>One problem found in a spec.</summary>
/// <param name="Key">Dotted key the problem is about, as the user wrote it (e.g. <c>train.num_epoch</c>); empty for a whole file.</param>
/// <param name="Message">What is wrong: the bad value, what is allowed, and where the value came from.</param>
public sealed record SpecError(string Key, string Message)
{
    /// <summary>Where the offending value came from: <c>file.yaml:12</c>, <c>--set key=value</c>, or a template.</summary>
    public string? Source { get; init; }

    public override string ToString() => Key.Length == 0 ? Message : $"{Key}: {Message}";
}
