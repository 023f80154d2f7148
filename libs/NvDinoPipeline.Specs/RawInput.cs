using System.Collections.Immutable;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace NvDinoPipeline.Specs;

/// <summary>Untyped input as written: YAML nodes or <c>--set</c> text, before the target key's type is applied.</summary>
internal abstract record RawInput
{
    public static RawInput FromYaml(YamlNode node) => node switch
    {
        YamlScalarNode scalar => new RawScalar(scalar.Value ?? "", scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted),
        YamlSequenceNode sequence => new RawSequence([.. sequence.Children.Select(FromYaml)]),
        YamlMappingNode mapping => new RawMapping([.. mapping.Children.Select(pair => new RawMappingEntry(
            pair.Key is YamlScalarNode key ? key.Value ?? "" : null,
            checked((int)pair.Key.Start.Line),
            FromYaml(pair.Value)))]),
        _ => new RawScalar(node.ToString(), Quoted: false),
    };
}

internal sealed record RawScalar(string Text, bool Quoted) : RawInput
{
    public bool IsNull => !Quoted && Text is "" or "~" or "null" or "Null" or "NULL";
}

internal sealed record RawSequence(ImmutableArray<RawInput> Items) : RawInput;

/// <param name="Key">Null when the YAML key is not a scalar.</param>
internal sealed record RawMappingEntry(string? Key, int Line, RawInput Value);

internal sealed record RawMapping(ImmutableArray<RawMappingEntry> Entries) : RawInput;
