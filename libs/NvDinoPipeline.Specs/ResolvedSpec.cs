using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace NvDinoPipeline.Specs;

/// <summary>
/// A merged, validated spec: an immutable tree of dotted keys (<c>train.optim.lr</c>) to values.
/// Its canonical JSON (keys sorted, floats always with a decimal point) is what jobs store and
/// messages carry; <see cref="Sha256"/> identifies it.
/// </summary>
public sealed class ResolvedSpec
{
    private readonly ImmutableArray<string> keys;
    private readonly ImmutableDictionary<string, SpecValue> values;
    private string? json;
    private string? sha256;

    internal ResolvedSpec(IEnumerable<KeyValuePair<string, SpecValue>> orderedValues)
    {
        var builder = ImmutableDictionary.CreateBuilder<string, SpecValue>(StringComparer.Ordinal);
        var order = ImmutableArray.CreateBuilder<string>();
        foreach (var (key, value) in orderedValues)
        {
            if (builder.ContainsKey(key))
                throw new ArgumentException($"Duplicate spec key '{key}'.", nameof(orderedValues));
            builder[key] = value;
            order.Add(key);
        }
        keys = order.ToImmutable();
        values = builder.ToImmutable();
    }

    /// <summary>Every leaf key, dotted, in the order of the templates (or of the JSON it was read from).</summary>
    public IReadOnlyList<string> Keys => keys;

    /// <summary>Lowercase hex SHA-256 of <see cref="ToJson"/>.</summary>
    public string Sha256 => sha256 ??= System.Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ToJson())));

    internal IReadOnlyDictionary<string, SpecValue> Values => values;

    public bool ContainsKey(string dottedKey) => values.ContainsKey(dottedKey);

    /// <summary>
    /// The value of a leaf key as <typeparamref name="T"/>: int, long, double, float, bool, string,
    /// their nullable forms, or IReadOnlyList of double, float, int, long or string.
    /// A null value reads as null for string and nullable types, and throws for the others.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No such key; the message names the closest one.</exception>
    /// <exception cref="InvalidCastException">The value does not convert to <typeparamref name="T"/>.</exception>
    public T Get<T>(string dottedKey)
    {
        ArgumentNullException.ThrowIfNull(dottedKey);
        if (!values.TryGetValue(dottedKey, out var value))
            throw new KeyNotFoundException(DescribeMissing(dottedKey));
        return Convert<T>(dottedKey, value);
    }

    /// <summary>
    /// Like <see cref="Get{T}"/>, but false (instead of an exception) when the key does not exist or its value is null.
    /// </summary>
    public bool TryGet<T>(string dottedKey, [MaybeNullWhen(false)] out T value)
    {
        ArgumentNullException.ThrowIfNull(dottedKey);
        if (!values.TryGetValue(dottedKey, out var stored) || stored.Kind == ValueKind.Null)
        {
            value = default;
            return false;
        }
        value = Convert<T>(dottedKey, stored);
        return true;
    }

    /// <summary>A string value that must be set: throws <see cref="SpecValidationException"/> naming the key when it is null or empty.</summary>
    public string RequireString(string dottedKey)
    {
        var value = Get<string?>(dottedKey);
        if (string.IsNullOrEmpty(value))
            throw new SpecValidationException([new SpecError(dottedKey, $"has no value; set it in a spec file or with --set {dottedKey}=...")]);
        return value;
    }

    /// <summary>The keys under <paramref name="prefix"/>, relative to it: <c>Section("train.optim").Get&lt;double&gt;("lr")</c>.</summary>
    public ResolvedSpec Section(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        if (prefix.Length == 0)
            return this;
        if (values.ContainsKey(prefix))
            throw new ArgumentException($"'{prefix}' is a value, not a section.", nameof(prefix));
        var start = prefix + ".";
        var section = keys.Where(key => key.StartsWith(start, StringComparison.Ordinal))
            .Select(key => KeyValuePair.Create(key[start.Length..], values[key]))
            .ToList();
        if (section.Count == 0)
            throw new KeyNotFoundException(DescribeMissing(prefix, SectionNames()));
        return new ResolvedSpec(section);
    }

    /// <summary>Canonical JSON: nested objects, keys in ordinal order, no whitespace, floats with a decimal point.</summary>
    public string ToJson()
    {
        if (json is not null)
            return json;
        var tree = new SortedDictionary<string, object>(StringComparer.Ordinal);
        foreach (var (key, value) in values)
        {
            var node = tree;
            var parts = key.Split('.');
            foreach (var part in parts[..^1])
            {
                if (!node.TryGetValue(part, out var child))
                    node[part] = child = new SortedDictionary<string, object>(StringComparer.Ordinal);
                node = (SortedDictionary<string, object>)child;
            }
            node[parts[^1]] = value;
        }
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            WriteJson(writer, tree);
        return json = Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Reads a spec written by <see cref="ToJson"/>. Checks shape only; <see cref="SpecLoader.Validate"/> checks it against the schema.</summary>
    /// <exception cref="FormatException">The JSON is not a spec tree.</exception>
    /// <exception cref="JsonException">The text is not JSON.</exception>
    public static ResolvedSpec FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        using var document = JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
            throw new FormatException($"A spec must be a JSON object, got {document.RootElement.ValueKind}.");
        var entries = new List<KeyValuePair<string, SpecValue>>();
        ReadJson(document.RootElement, "", entries);
        return new ResolvedSpec(entries);
    }

    /// <summary>The spec as a YAML spec file (nested, template order); loading it back gives the same spec.</summary>
    public string ToYaml()
    {
        var text = new StringBuilder();
        string[] open = [];
        foreach (var key in TreeOrder(keys))
        {
            var parts = key.Split('.');
            var shared = 0;
            while (shared < open.Length && shared < parts.Length - 1 && open[shared] == parts[shared])
                shared++;
            for (var depth = shared; depth < parts.Length - 1; depth++)
                text.Append(' ', depth * 2).Append(parts[depth]).Append(":\n");
            text.Append(' ', (parts.Length - 1) * 2).Append(parts[^1]).Append(": ").Append(values[key].ToLiteral()).Append('\n');
            open = parts[..^1];
        }
        return text.ToString();
    }

    public override string ToString() => ToJson();

    /// <summary>
    /// Keys regrouped so each section's keys are adjacent, sections in order of first appearance
    /// (model.distill.* from distill.yaml joins model.* from train.yaml).
    /// </summary>
    internal static IEnumerable<string> TreeOrder(IEnumerable<string> dottedKeys)
    {
        return Group(dottedKeys.Select(key => (Key: key, Remainder: key)).ToList());

        static IEnumerable<string> Group(List<(string Key, string Remainder)> items)
        {
            foreach (var group in items.GroupBy(item => item.Remainder.Split('.')[0], StringComparer.Ordinal))
            {
                foreach (var item in group.Where(item => !item.Remainder.Contains('.')))
                    yield return item.Key;
                var nested = group.Where(item => item.Remainder.Contains('.'))
                    .Select(item => (item.Key, item.Remainder[(item.Remainder.IndexOf('.') + 1)..]))
                    .ToList();
                foreach (var key in Group(nested))
                    yield return key;
            }
        }
    }

    private static T Convert<T>(string key, SpecValue value)
    {
        var result = value.Kind == ValueKind.Null ? null : ConvertValue(typeof(T), value);
        if (result is null && !(value.Kind == ValueKind.Null && AcceptsNull(typeof(T))))
            throw new InvalidCastException(
                $"Spec key '{key}' holds {Describe(value)}, which cannot be read as {typeof(T).Name}"
                + (value.Kind == ValueKind.Null ? "; read it as a nullable type or use TryGet." : "."));
        return (T)result!;
    }

    private static bool AcceptsNull(Type type) => type == typeof(string) || Nullable.GetUnderlyingType(type) is not null;

    private static object? ConvertValue(Type type, SpecValue value)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        return target switch
        {
            _ when target == typeof(int) => value.Kind == ValueKind.Int && value.Int is >= int.MinValue and <= int.MaxValue ? (int)value.Int : null,
            _ when target == typeof(long) => value.Kind == ValueKind.Int ? value.Int : null,
            _ when target == typeof(double) => value.IsNumber ? value.Number : null,
            _ when target == typeof(float) => value.IsNumber ? (float)value.Number : null,
            _ when target == typeof(bool) => value.Kind == ValueKind.Bool ? value.Bool : null,
            _ when target == typeof(string) => value.Kind == ValueKind.String ? value.String : null,
            _ when target == typeof(IReadOnlyList<double>) => ListOf(value, item => item.IsNumber, item => item.Number),
            _ when target == typeof(IReadOnlyList<float>) => ListOf(value, item => item.IsNumber, item => (float)item.Number),
            _ when target == typeof(IReadOnlyList<int>) => ListOf(value, item => item.Kind == ValueKind.Int && item.Int is >= int.MinValue and <= int.MaxValue, item => (int)item.Int),
            _ when target == typeof(IReadOnlyList<long>) => ListOf(value, item => item.Kind == ValueKind.Int, item => item.Int),
            _ when target == typeof(IReadOnlyList<string>) => ListOf(value, item => item.Kind == ValueKind.String, item => item.String!),
            _ => throw new NotSupportedException(
                $"ResolvedSpec.Get<{type.Name}> is not supported; use int, long, double, float, bool, string, "
                + "a nullable of those, or IReadOnlyList<double|float|int|long|string>."),
        };
    }

    private static IReadOnlyList<TItem>? ListOf<TItem>(SpecValue value, Func<SpecValue, bool> accepts, Func<SpecValue, TItem> convert) =>
        value.Kind == ValueKind.List && value.Items.All(accepts) ? [.. value.Items.Select(convert)] : null;

    private static string Describe(SpecValue value) => value.Kind switch
    {
        ValueKind.Null => "null",
        ValueKind.Bool => $"the boolean {value}",
        ValueKind.Int => $"the integer {value}",
        ValueKind.Float => $"the number {value}",
        ValueKind.String => $"the string {value}",
        _ => $"the list {value}",
    };

    private IEnumerable<string> SectionNames() =>
        keys.SelectMany(key =>
        {
            var parts = key.Split('.');
            return Enumerable.Range(1, parts.Length - 1).Select(count => string.Join('.', parts[..count]));
        }).Distinct(StringComparer.Ordinal);

    private string DescribeMissing(string key, IEnumerable<string>? candidates = null)
    {
        var known = (candidates ?? keys).ToList();
        var closest = KeySuggestions.Closest(key, known);
        return closest is null
            ? $"The spec has no key '{key}'."
            : $"The spec has no key '{key}'; did you mean '{closest}'?";
    }

    private static void WriteJson(Utf8JsonWriter writer, SortedDictionary<string, object> node)
    {
        writer.WriteStartObject();
        foreach (var (name, child) in node)
        {
            writer.WritePropertyName(name);
            if (child is SortedDictionary<string, object> section)
                WriteJson(writer, section);
            else
                WriteValue(writer, (SpecValue)child);
        }
        writer.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter writer, SpecValue value)
    {
        switch (value.Kind)
        {
            case ValueKind.Null:
                writer.WriteNullValue();
                break;
            case ValueKind.Bool:
                writer.WriteBooleanValue(value.Bool);
                break;
            case ValueKind.Int:
                writer.WriteNumberValue(value.Int);
                break;
            case ValueKind.Float:
                writer.WriteRawValue(SpecValue.FormatFloat(value.Float));
                break;
            case ValueKind.String:
                writer.WriteStringValue(value.String);
                break;
            default:
                writer.WriteStartArray();
                foreach (var item in value.Items)
                    WriteValue(writer, item);
                writer.WriteEndArray();
                break;
        }
    }

    private static void ReadJson(JsonElement element, string prefix, List<KeyValuePair<string, SpecValue>> entries)
    {
        foreach (var property in element.EnumerateObject())
        {
            if (property.Name.Length == 0 || property.Name.Contains('.'))
                throw new FormatException($"Spec JSON property '{prefix}{property.Name}' is not a valid key name.");
            var key = prefix + property.Name;
            if (property.Value.ValueKind == JsonValueKind.Object)
                ReadJson(property.Value, key + ".", entries);
            else if (property.Value.ValueKind == JsonValueKind.Array)
                entries.Add(KeyValuePair.Create(key, SpecValue.List(property.Value.EnumerateArray().Select(item => ReadScalar(key, item)))));
            else
                entries.Add(KeyValuePair.Create(key, ReadScalar(key, property.Value)));
        }
    }

    private static SpecValue ReadScalar(string key, JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Null => SpecValue.Null,
        JsonValueKind.True => SpecValue.Of(true),
        JsonValueKind.False => SpecValue.Of(false),
        JsonValueKind.String => SpecValue.Of(element.GetString()!),
        JsonValueKind.Number when element.GetRawText().IndexOfAny(['.', 'e', 'E']) >= 0 =>
            SpecValue.Of(double.Parse(element.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture)),
        JsonValueKind.Number when element.TryGetInt64(out var integer) => SpecValue.Of(integer),
        _ => throw new FormatException($"Spec JSON key '{key}' holds {element.ValueKind} {element.GetRawText()}, which is not a spec value."),
    };
}
