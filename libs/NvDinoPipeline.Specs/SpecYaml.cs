using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace NvDinoPipeline.Specs;

/// <summary>
/// How much YAML a spec may hold. A spec is a few hundred keys; these bounds leave room for long lists while a
/// hostile document (an "alias bomb" whose anchors repeat each other, a thousand-deep nesting, a gigabyte file) is
/// refused while it is read, in milliseconds and without building what it would expand to.
/// </summary>
public static class SpecLimits
{
    /// <summary>Characters in one spec document (a file, a request body, or one <c>--set</c> value): 1 MiB.</summary>
    public const int MaxDocumentChars = 1024 * 1024;

    /// <summary>Nested mappings and lists.</summary>
    public const int MaxDepth = 32;

    /// <summary>Alias uses (<c>*name</c>).</summary>
    public const int MaxAliases = 100;

    /// <summary>Values (scalars, lists, mappings), each alias counted as everything it repeats.</summary>
    public const int MaxNodes = 100_000;

    /// <summary>Mapping keys, each alias counted as every key it repeats.</summary>
    public const int MaxKeys = 2_000;
}

/// <summary>
/// Reads one YAML document into <see cref="RawInput"/> event by event, enforcing <see cref="SpecLimits"/> as it goes.
/// An alias shares the node it names (nothing is copied) but counts as all of it.
/// </summary>
internal static class SpecYaml
{
    /// <summary>The document's root, or null when it holds no document.</summary>
    /// <exception cref="SpecYamlException">The text is not YAML, holds several documents, or is over a limit.</exception>
    public static (RawInput Root, long Line)? Read(string yaml)
    {
        if (yaml.Length > SpecLimits.MaxDocumentChars)
        {
            throw new SpecYamlException(
                $"is longer than {SpecLimits.MaxDocumentChars} characters (1 MiB); a spec is a few kilobytes", 1);
        }

        var reader = new Reader();
        try
        {
            return reader.Read(new Parser(new StringReader(yaml)));
        }
        catch (YamlException exception)
        {
            throw new SpecYamlException($"is not valid YAML: {InnerMost(exception).Message}", exception.Start.Line);
        }
    }

    private static Exception InnerMost(Exception exception) =>
        exception.InnerException is { } inner ? InnerMost(inner) : exception;

    private sealed class Reader
    {
        private readonly Dictionary<string, (RawInput Node, long Nodes, long Keys)> anchors = new(StringComparer.Ordinal);
        private readonly Stack<Frame> open = new();
        private (RawInput Node, long Line)? root;
        private long nodes;
        private long keys;
        private int aliases;

        public (RawInput, long)? Read(Parser parser)
        {
            var documents = 0;
            while (parser.MoveNext())
            {
                var current = parser.Current!;
                var line = current.Start.Line;
                switch (current)
                {
                    case DocumentStart when ++documents > 1:
                        throw new SpecYamlException("holds more than one YAML document; a spec file holds one", line);
                    case Scalar scalar:
                        Count(line);
                        var value = new RawScalar(scalar.Value ?? "", scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted);
                        Remember(scalar.Anchor, value, 1, 0);
                        Deliver(value, line);
                        break;
                    case AnchorAlias alias:
                        if (++aliases > SpecLimits.MaxAliases)
                        {
                            throw new SpecYamlException($"uses more than {SpecLimits.MaxAliases} aliases", line);
                        }
                        if (!anchors.TryGetValue(alias.Value.Value, out var anchored))
                        {
                            throw new SpecYamlException($"uses alias *{alias.Value.Value}, which no anchor before it defines", line);
                        }
                        nodes += anchored.Nodes;
                        keys += anchored.Keys;
                        CheckTotals(line);
                        Deliver(anchored.Node, line);
                        break;
                    case MappingStart mapping:
                        Open(new Frame(mapping.Anchor, line, nodes, keys, IsMapping: true));
                        break;
                    case SequenceStart sequence:
                        Open(new Frame(sequence.Anchor, line, nodes, keys, IsMapping: false));
                        break;
                    case MappingEnd or SequenceEnd:
                        var frame = open.Pop();
                        RawInput node = frame.IsMapping ? new RawMapping([.. frame.Entries]) : new RawSequence([.. frame.Items]);
                        Remember(frame.Anchor, node, nodes - frame.NodesBefore, keys - frame.KeysBefore);
                        Deliver(node, frame.Line);
                        break;
                }
            }
            return root;
        }

        private void Open(Frame frame)
        {
            if (open.Count >= SpecLimits.MaxDepth)
            {
                throw new SpecYamlException($"nests lists and mappings more than {SpecLimits.MaxDepth} levels deep", frame.Line);
            }
            Count(frame.Line);
            open.Push(frame);
        }

        private void Count(long line)
        {
            nodes++;
            CheckTotals(line);
        }

        private void CheckTotals(long line)
        {
            if (nodes > SpecLimits.MaxNodes)
            {
                throw new SpecYamlException(
                    $"holds more than {SpecLimits.MaxNodes} values once every alias is expanded; a spec holds a few hundred", line);
            }
            if (keys > SpecLimits.MaxKeys)
            {
                throw new SpecYamlException(
                    $"holds more than {SpecLimits.MaxKeys} keys once every alias is expanded; a spec holds a few hundred", line);
            }
        }

        private void Remember(AnchorName anchor, RawInput node, long nodeCount, long keyCount)
        {
            if (!anchor.IsEmpty)
            {
                anchors[anchor.Value] = (node, nodeCount, keyCount);
            }
        }

        private void Deliver(RawInput node, long line)
        {
            if (!open.TryPeek(out var parent))
            {
                root = (node, line);
                return;
            }
            if (!parent.IsMapping)
            {
                parent.Items.Add(node);
                return;
            }
            if (parent.Key is not { } key)
            {
                keys++;
                CheckTotals(line);
                parent.Key = (node is RawScalar scalar ? scalar.Text : null, checked((int)line));
                return;
            }
            parent.Entries.Add(new RawMappingEntry(key.Text, key.Line, node));
            parent.Key = null;
        }
    }

    private sealed record Frame(AnchorName Anchor, long Line, long NodesBefore, long KeysBefore, bool IsMapping)
    {
        public List<RawMappingEntry> Entries { get; } = [];

        public List<RawInput> Items { get; } = [];

        /// <summary>The key read and waiting for its value.</summary>
        public (string? Text, int Line)? Key { get; set; }
    }
}

/// <summary>A spec document that cannot be read; the message completes "&lt;name&gt; …".</summary>
internal sealed class SpecYamlException(string message, long line) : Exception(message)
{
    public long Line { get; } = line;
}
