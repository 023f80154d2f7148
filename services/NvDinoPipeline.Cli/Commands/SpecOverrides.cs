using System.Text.Json;

namespace NvDinoPipeline.Cli.Commands;

/// <summary>
/// A spec-overrides JSON object, as TAO's API takes it (<c>spec_overrides</c>): dotted keys, or nested sections, to values.
/// Read as <c>--set</c> assignments so every key is checked by the same rules.
/// </summary>
public static class SpecOverrides
{
    /// <summary>The assignments of <paramref name="source"/>: inline JSON (starting with '{') or the path of a JSON file.</summary>
    public static IReadOnlyList<string> Read(string? source)
    {
        if (string.IsNullOrWhiteSpace(source))
        {
            return [];
        }
        var inline = source.TrimStart().StartsWith('{');
        if (!inline && !File.Exists(source))
        {
            throw new CliException($"--spec-overrides: '{source}' is neither a JSON object nor an existing file.");
        }
        var json = inline ? source : File.ReadAllText(source);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException exception)
        {
            throw new CliException($"--spec-overrides{(inline ? "" : $" file '{source}'")} is not valid JSON: {exception.Message}");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CliException("--spec-overrides must be a JSON object of keys and values, such as {\"train.num_epochs\": 1}.");
            }
            var assignments = new List<string>();
            Flatten(document.RootElement, "", assignments);
            return assignments;
        }
    }

    private static void Flatten(JsonElement element, string prefix, List<string> assignments)
    {
        foreach (var property in element.EnumerateObject())
        {
            var key = prefix + property.Name;
            switch (property.Value.ValueKind)
            {
                case JsonValueKind.Object:
                    Flatten(property.Value, key + ".", assignments);
                    break;
                case JsonValueKind.String:
                    assignments.Add($"{key}={property.Value.GetString()}");
                    break;
                default:
                    assignments.Add($"{key}={property.Value.GetRawText()}");
                    break;
            }
        }
    }
}
