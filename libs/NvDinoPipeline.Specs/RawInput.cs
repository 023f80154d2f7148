using System.Collections.Immutable;

namespace NvDinoPipeline.Specs;

/// <summary>Untyped input as written: YAML nodes or <c>--set</c> text, before the target key's type is applied.</summary>
internal abstract record RawInput;
internal sealed record RawScalar(string Text, bool Quoted) : RawInput
{
    public bool IsNull => !Quoted && Text is "" or "~" or "null" or "Null" or "NULL";
}

internal sealed record RawSequence(ImmutableArray<RawInput> Items) : RawInput;

/// <param name="Key">Null when the YAML key is not a scalar.</param>
internal sealed record RawMappingEntry(string? Key, int Line, RawInput Value);

internal sealed record RawMapping(ImmutableArray<RawMappingEntry> Entries) : RawInput;
