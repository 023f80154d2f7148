using System.Globalization;
using System.Text.RegularExpressions;

namespace NvDinoPipeline.Specs;

/// <summary>Turns raw input into a typed value for a key, and checks a value against the key's rule.</summary>
internal static partial class ValueRules
{
    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();

    /// <summary>Parses <paramref name="raw"/> as <paramref name="definition"/>'s type; on failure returns the problem.</summary>
    public static (SpecValue? Value, string? Problem) Parse(RawInput raw, KeyDefinition definition)
    {
        if (raw is RawMapping)
            return (null, $"a mapping is not allowed here; expected {definition.Expectation()}");

        if (raw is RawScalar { IsNull: true })
        {
            // A bare "key:" for a list means an empty list.
            if (definition.Type is SpecType.StringList or SpecType.NumberList && raw is RawScalar { Text: "" })
                return (SpecValue.List([]), null);
            return definition.Nullable
                ? (SpecValue.Null, null)
                : (null, $"null is not allowed; expected {definition.Expectation()}");
        }

        switch (definition.Type)
        {
            case SpecType.NumberList or SpecType.StringList:
                var items = raw switch
                {
                    RawSequence sequence => sequence.Items,
                    // A single path where TAO takes a list of them (cal_image_dir).
                    RawScalar scalar when definition.Type == SpecType.StringList => [scalar],
                    _ => default,
                };
                if (items.IsDefault)
                    return (null, $"{Show(raw)} is not a list; expected {definition.Expectation()}, written like [0.32, 1.0]");
                var values = new List<SpecValue>();
                foreach (var item in items)
                {
                    var element = item is RawScalar itemScalar
                        ? ParseScalar(itemScalar, definition.Type == SpecType.NumberList ? SpecType.Float : SpecType.String, definition.Rule)
                        : null;
                    if (element is null)
                        return (null, $"{Show(raw)} is not {SpecTypeNoun(definition)}; expected {definition.Expectation()}");
                    values.Add(element);
                }
                return (SpecValue.List(values), null);

            default:
                if (raw is not RawScalar valueScalar)
                    return (null, $"{Show(raw)} is a list; expected {definition.Expectation()}");
                var value = ParseScalar(valueScalar, definition.Type, definition.Rule);
                return value is null
                    ? (null, $"{Show(raw)} is not {KeyDefinition.TypeNoun(definition.Type)}; expected {definition.Expectation()}")
                    : (value, null);
        }
    }

    /// <summary>Brings a stored value (e.g. read back from JSON) to the key's type; integers widen to floats.</summary>
    public static (SpecValue? Value, string? Problem) Conform(SpecValue value, KeyDefinition definition)
    {
        var conformed = (value.Kind, definition.Type) switch
        {
            (ValueKind.Null, _) when definition.Nullable => value,
            (ValueKind.Int, SpecType.Int) or (ValueKind.Float, SpecType.Float) or (ValueKind.Bool, SpecType.Bool)
                or (ValueKind.String, SpecType.String) => value,
            (ValueKind.Int, SpecType.Float) => SpecValue.Of((double)value.Int),
            (ValueKind.List, SpecType.NumberList) when value.Items.All(item => item.IsNumber) =>
                SpecValue.List(value.Items.Select(item => SpecValue.Of(item.Number))),
            (ValueKind.List, SpecType.StringList) when value.Items.All(item => item.Kind == ValueKind.String) => value,
            _ => null,
        };
        return conformed is null
            ? (null, $"{value} is not {SpecTypeNoun(definition)}; expected {definition.Expectation()}")
            : (conformed, null);
    }

    /// <summary>The problem with a well-typed value under the key's rule, or null when it is allowed.</summary>
    public static string? Check(SpecValue value, KeyDefinition definition)
    {
        var problem = Problem(value, definition);
        return problem is not null && definition.Rule.Reason is { } reason ? $"{problem} ({reason})" : problem;
    }

    private static string? Problem(SpecValue value, KeyDefinition definition)
    {
        var rule = definition.Rule;
        if (value.Kind == ValueKind.Null)
            return definition.Nullable ? null : $"null is not allowed; expected {definition.Expectation()}";

        if (value.Kind == ValueKind.String && rule.Unsupported.TryGetValue(value.String ?? "", out var unsupported))
            return $"{value} is not supported: {unsupported}; allowed values: {string.Join(", ", rule.Choices)}";
        if (rule.Choices.Length > 0 && !rule.Choices.Contains(value.String ?? ""))
            return $"{value} is not an allowed value; allowed values: {string.Join(", ", rule.Choices)}";
        if (rule.IntChoices.Length > 0 && !rule.IntChoices.Contains(value.Int))
            return $"{value} is not an allowed value; allowed values: {string.Join(", ", rule.IntChoices)}";

        if (value.Kind == ValueKind.List)
        {
            if (rule.Length is { } length && value.Items.Length != length)
                return $"{value} has {value.Items.Length} elements; expected {definition.Expectation()}";
            if (rule.HasRange && value.Items.FirstOrDefault(item => !rule.InRange(item.Number)) is { } outside)
                return $"{value} has {outside} out of range; each element must be {rule.RangeText()}";
            if (rule.Ascending && value.Items.Zip(value.Items.Skip(1)).Any(pair => pair.First.Number > pair.Second.Number))
                return $"{value} is not in order; the first value is the minimum and must not exceed the second";
        }
        else if (value.IsNumber && rule.HasRange && !rule.InRange(value.Number))
        {
            return $"{value} is out of range; allowed: {rule.RangeText()}";
        }

        if (rule.Check is { } check && !check(value))
            return $"{value} is not valid; expected {rule.CheckDescription}";
        if (rule.Location != LocationRole.None)
        {
            var texts = value.Kind == ValueKind.List ? value.Items.Select(item => item.String ?? "") : [value.String ?? ""];
            return texts.Select(text => SpecLocations.Problem(text, rule.Location)).FirstOrDefault(problem => problem is not null);
        }
        return null;
    }

    private static SpecValue? ParseScalar(RawScalar scalar, SpecType type, KeyRule rule)
    {
        var text = scalar.Quoted ? scalar.Text : scalar.Text.Trim();
        switch (type)
        {
            case SpecType.Int:
                return IntegerPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer)
                    ? SpecValue.Of(integer)
                    : null;
            case SpecType.Float:
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number)
                    ? SpecValue.Of(number)
                    : null;
            case SpecType.Bool:
                return text.Equals("true", StringComparison.OrdinalIgnoreCase) ? SpecValue.Of(true)
                    : text.Equals("false", StringComparison.OrdinalIgnoreCase) ? SpecValue.Of(false)
                    : null;
            default:
                return SpecValue.Of(Canonical(text, rule));
        }
    }

    /// <summary>Enum values match case-insensitively and through their aliases (TAO's "16-mixed" is fp16).</summary>
    private static string Canonical(string text, KeyRule rule)
    {
        if (rule.Choices.Length == 0)
            return text;
        if (rule.Unsupported.Keys.FirstOrDefault(value => value.Equals(text, StringComparison.OrdinalIgnoreCase)) is { } refused)
            return refused;
        if (rule.Choices.FirstOrDefault(choice => choice.Equals(text, StringComparison.OrdinalIgnoreCase)) is { } choice)
            return choice;
        return rule.ValueAliases.TryGetValue(text, out var canonical) ? canonical : text;
    }

    private static string SpecTypeNoun(KeyDefinition definition) =>
        definition.Nullable ? KeyDefinition.TypeNoun(definition.Type) + " or null" : KeyDefinition.TypeNoun(definition.Type);

    private static string Show(RawInput raw) => raw switch
    {
        RawScalar scalar => $"'{scalar.Text}'",
        RawSequence sequence => "[" + string.Join(", ", sequence.Items.Select(item => item is RawScalar s ? s.Text : "...")) + "]",
        _ => "a mapping",
    };
}
