using System.Collections.Immutable;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace NvDinoPipeline.Specs;

internal enum ValueKind
{
    Null,
    Bool,
    Int,
    Float,
    String,
    List,
}

/// <summary>One leaf value of a spec: a scalar, null, or a flat list of scalars.</summary>
internal sealed class SpecValue : IEquatable<SpecValue>
{
    private static readonly JsonSerializerOptions StringEscaping = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private SpecValue(ValueKind kind, bool boolean = false, long integer = 0, double number = 0, string? text = null, ImmutableArray<SpecValue> items = default)
    {
        Kind = kind;
        Bool = boolean;
        Int = integer;
        Float = number;
        String = text;
        Items = items.IsDefault ? [] : items;
    }

    public static SpecValue Null { get; } = new(ValueKind.Null);

    public ValueKind Kind { get; }
    public bool Bool { get; }
    public long Int { get; }
    public double Float { get; }
    public string? String { get; }
    public ImmutableArray<SpecValue> Items { get; }

    public bool IsNumber => Kind is ValueKind.Int or ValueKind.Float;

    public double Number => Kind == ValueKind.Int ? Int : Float;

    public static SpecValue Of(bool value) => new(ValueKind.Bool, boolean: value);
    public static SpecValue Of(long value) => new(ValueKind.Int, integer: value);
    public static SpecValue Of(double value) => new(ValueKind.Float, number: value);
    public static SpecValue Of(string value) => new(ValueKind.String, text: value);
    public static SpecValue List(IEnumerable<SpecValue> items) => new(ValueKind.List, items: [.. items]);

    /// <summary>
    /// Shortest round-trip form that always reads back as a float: "1.0", "0.994", "1.0E-05".
    /// The decimal point keeps YAML 1.1 readers and <see cref="ResolvedSpec.FromJson"/> from taking it for an integer.
    /// </summary>
    public static string FormatFloat(double value)
    {
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        var exponent = text.IndexOfAny(['E', 'e']);
        var mantissa = exponent < 0 ? text : text[..exponent];
        if (!mantissa.Contains('.'))
            mantissa += ".0";
        return exponent < 0 ? mantissa : mantissa + text[exponent..];
    }

    public static string Quote(string text) => JsonSerializer.Serialize(text, StringEscaping);

    /// <summary>YAML/JSON text of the value: strings quoted, floats with a decimal point.</summary>
    public string ToLiteral() => Kind switch
    {
        ValueKind.Null => "null",
        ValueKind.Bool => Bool ? "true" : "false",
        ValueKind.Int => Int.ToString(CultureInfo.InvariantCulture),
        ValueKind.Float => FormatFloat(Float),
        ValueKind.String => Quote(String!),
        _ => "[" + string.Join(", ", Items.Select(item => item.ToLiteral())) + "]",
    };

    /// <summary>How the value appears in error messages.</summary>
    public override string ToString() => Kind == ValueKind.String ? $"'{String}'" : ToLiteral();

    public bool Equals(SpecValue? other) =>
        other is not null
        && Kind == other.Kind
        && Kind switch
        {
            ValueKind.Null => true,
            ValueKind.Bool => Bool == other.Bool,
            ValueKind.Int => Int == other.Int,
            ValueKind.Float => Float.Equals(other.Float),
            ValueKind.String => string.Equals(String, other.String, StringComparison.Ordinal),
            _ => Items.SequenceEqual(other.Items),
        };

    public override bool Equals(object? obj) => Equals(obj as SpecValue);

    public override int GetHashCode() => HashCode.Combine(Kind, ToLiteral());
}
