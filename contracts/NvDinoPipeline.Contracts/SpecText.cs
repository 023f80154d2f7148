using System.Text.Json;
using System.Text.Json.Serialization;

namespace NvDinoPipeline.Contracts;

/// <summary>
/// A spec on the wire: a JSON object, or a string holding JSON or YAML. Read as the text of either, so that the receiver
/// merges it over its templates; written as a string.
/// </summary>
public sealed class SpecTextJsonConverter : JsonConverter<string>
{
    public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString()!,
        JsonTokenType.StartObject => JsonElement.ParseValue(ref reader).GetRawText(),
        _ => throw new JsonException($"A spec is a JSON object or a string of JSON or YAML, not {reader.TokenType}."),
    };

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}
