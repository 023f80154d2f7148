using System.Collections.Immutable;
using System.Globalization;

namespace NvDinoPipeline.Specs;

internal enum SpecType
{
    Int,
    Float,
    Bool,
    String,
    NumberList,
    StringList,
}

/// <summary>
/// What a key accepts beyond the type its template value shows: enums, ranges, nullability, list shape.
/// <see cref="Type"/> is only needed where the template value cannot show it (null, []).
/// </summary>
internal sealed record KeyRule(string Key)
{
    public SpecType? Type { get; init; }
    public bool Nullable { get; init; }
    public ImmutableArray<string> Choices { get; init; } = [];
    public ImmutableDictionary<string, string> ValueAliases { get; init; } = ImmutableDictionary<string, string>.Empty;
    public ImmutableArray<long> IntChoices { get; init; } = [];
    public double? Min { get; init; }
    public bool MinExclusive { get; init; }
    public double? Max { get; init; }
    public bool MaxExclusive { get; init; }

    /// <summary>Exact element count of a list.</summary>
    public int? Length { get; init; }

    /// <summary>List elements must not decrease (a min/max pair).</summary>
    public bool Ascending { get; init; }

    /// <summary>Whether the value names something the stage reads or writes (see <see cref="SpecLocations"/>).</summary>
    public LocationRole Location { get; init; }

    public Func<SpecValue, bool>? Check { get; init; }
    public string? CheckDescription { get; init; }

    /// <summary>Why the allowed values are what they are; added to every refusal of this key.</summary>
    public string? Reason { get; init; }

    /// <summary>Values that parse (TAO spells them) but the workers cannot run, each with the reason.</summary>
    public ImmutableDictionary<string, string> Unsupported { get; init; } = ImmutableDictionary<string, string>.Empty;

    public KeyRule OneOf(params string[] choices) => this with { Choices = [.. choices] };

    public KeyRule OneOf(params long[] choices) => this with { IntChoices = [.. choices] };

    /// <summary>Other spellings accepted on input (TAO's, DINOv2's) and stored as the canonical choice.</summary>
    public KeyRule Accepting(params (string Alias, string Canonical)[] aliases) =>
        this with { ValueAliases = aliases.ToImmutableDictionary(a => a.Alias, a => a.Canonical, StringComparer.OrdinalIgnoreCase) };

    public KeyRule AtLeast(double min) => this with { Min = min, MinExclusive = false };

    public KeyRule Above(double min) => this with { Min = min, MinExclusive = true };

    public KeyRule AtMost(double max) => this with { Max = max, MaxExclusive = false };

    public KeyRule Below(double max) => this with { Max = max, MaxExclusive = true };

    public KeyRule Probability() => AtLeast(0).AtMost(1);

    public KeyRule NullableOf(SpecType type) => this with { Type = type, Nullable = true };

    public KeyRule Of(SpecType type) => this with { Type = type };

    public KeyRule Pair() => this with { Length = 2, Ascending = true };

    /// <summary>The value names a file or folder the stage reads.</summary>
    public KeyRule Input() => this with { Location = LocationRole.Input };

    /// <summary>The value names a file the stage writes: a path inside the job's own folder.</summary>
    public KeyRule Output() => this with { Location = LocationRole.Output };

    public KeyRule Must(Func<SpecValue, bool> check, string description) => this with { Check = check, CheckDescription = description };

    /// <summary>States why only these values are allowed (what the workers cannot do), so a refusal says it.</summary>
    public KeyRule Because(string reason) => this with { Reason = reason };

    /// <summary>A value TAO accepts that is refused here, with the reason; it is still recognised (and its aliases).</summary>
    public KeyRule Refusing(string value, string reason) =>
        this with { Unsupported = Unsupported.SetItem(value, reason) };

    public bool HasRange => Min is not null || Max is not null;

    public string RangeText()
    {
        var min = Min is { } lo ? Format(lo) : null;
        var max = Max is { } hi ? Format(hi) : null;
        return (min, max) switch
        {
            (not null, not null) => $"in {(MinExclusive ? "(" : "[")}{min}, {max}{(MaxExclusive ? ")" : "]")}",
            (not null, null) => $"{(MinExclusive ? ">" : ">=")} {min}",
            (null, not null) => $"{(MaxExclusive ? "<" : "<=")} {max}",
            _ => "",
        };
    }

    public bool InRange(double value) =>
        (Min is not { } lo || (MinExclusive ? value > lo : value >= lo))
        && (Max is not { } hi || (MaxExclusive ? value < hi : value <= hi));

    private static string Format(double value) =>
        value == Math.Floor(value) && Math.Abs(value) < 1e15
            ? ((long)value).ToString(CultureInfo.InvariantCulture)
            : value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>A key of the merged template tree: its type, default and rule.</summary>
internal sealed record KeyDefinition(string Key, SpecType Type, KeyRule Rule, SpecValue Default, string DefaultSource)
{
    public bool Nullable => Rule.Nullable;

    /// <summary>What the key accepts, for error messages: "an integer >= 1", "one of: fp32, bf16, fp16".</summary>
    public string Expectation()
    {
        string core;
        if (Rule.Choices.Length > 0)
            core = "one of: " + string.Join(", ", Rule.Choices);
        else if (Rule.IntChoices.Length > 0)
            core = "one of: " + string.Join(", ", Rule.IntChoices);
        else if (Rule.CheckDescription is not null)
            core = Rule.CheckDescription;
        else if (Type is SpecType.NumberList or SpecType.StringList)
        {
            var count = Rule.Length is { } length ? $"{length} " : "";
            core = $"a list of {count}{(Type == SpecType.NumberList ? "numbers" : "strings")}";
            if (Rule.HasRange)
                core += ", each " + Rule.RangeText();
            if (Rule.Ascending)
                core += ", smallest first";
        }
        else
        {
            core = TypeNoun(Type);
            if (Rule.HasRange)
                core += " " + Rule.RangeText();
        }
        return Nullable ? core + ", or null" : core;
    }

    public static string TypeNoun(SpecType type) => type switch
    {
        SpecType.Int => "an integer",
        SpecType.Float => "a number",
        SpecType.Bool => "true or false",
        SpecType.String => "a string",
        SpecType.NumberList => "a list of numbers",
        _ => "a list of strings",
    };
}
