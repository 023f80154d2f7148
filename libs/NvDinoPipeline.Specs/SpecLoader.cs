using System.Collections.Immutable;
using System.Globalization;
using System.Text.RegularExpressions;

namespace NvDinoPipeline.Specs;

/// <summary>
/// Loads the spec templates of a directory (<c>specs/*.yaml</c>, merged into one tree) and resolves
/// user specs against them: template ← user YAML files in order ← dotted <c>key=value</c> overrides.
/// Types come from the template values, enums and ranges from the rule table; every problem is
/// collected into one <see cref="SpecValidationException"/>. Immutable and thread-safe once built.
/// </summary>
public sealed partial class SpecLoader
{
    /// <summary>Environment variable naming the templates directory; overrides every other location.</summary>
    public const string SpecsDirectoryVariable = "NVDINO_SPECS_DIR";

    private const string ResolvedSource = "resolved spec";

    /// <summary>Template files in the order their sections appear in a resolved spec; other *.yaml files follow by name.</summary>
    private static readonly string[] TemplateOrder = ["train", "distill", "export", "gen_trt_engine", "inference", "evaluate", "pipeline"];

    private readonly ImmutableDictionary<string, KeyDefinition> definitions;
    private readonly ImmutableArray<string> order;
    private readonly ImmutableHashSet<string> sections;

    /// <param name="specsDirectory">A directory holding the templates (train.yaml, export.yaml, ...).</param>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist or holds no *.yaml.</exception>
    /// <exception cref="SpecValidationException">The templates are inconsistent with each other or with the rule table.</exception>
    public SpecLoader(string specsDirectory)
    {
        ArgumentNullException.ThrowIfNull(specsDirectory);
        SpecsDirectory = Path.GetFullPath(specsDirectory);
        if (!Directory.Exists(SpecsDirectory))
            throw new DirectoryNotFoundException($"Spec templates directory '{SpecsDirectory}' does not exist.");
        var files = Directory.GetFiles(SpecsDirectory, "*.yaml")
            .OrderBy(file => Array.IndexOf(TemplateOrder, Path.GetFileNameWithoutExtension(file)) is var index and >= 0 ? index : int.MaxValue)
            .ThenBy(file => file, StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
            throw new DirectoryNotFoundException($"Spec templates directory '{SpecsDirectory}' holds no *.yaml templates.");

        var errors = new List<SpecError>();
        var leaves = new List<(string Key, RawInput Raw, string Source)>();
        foreach (var file in files)
        {
            var name = Path.GetFileName(file);
            if (ReadDocument(new SpecDocument(name, File.ReadAllText(file)), errors) is { } mapping)
                CollectLeaves(mapping, "", name, leaves, errors);
        }

        var rules = SpecRules.Keys.ToDictionary(rule => rule.Key, StringComparer.Ordinal);
        var built = ImmutableDictionary.CreateBuilder<string, KeyDefinition>(StringComparer.Ordinal);
        var definedIn = new Dictionary<string, string>(StringComparer.Ordinal);
        var keyOrder = new List<string>();
        foreach (var (key, raw, source) in leaves)
        {
            var where = $"default in {source}";
            if (definedIn.TryGetValue(key, out var first))
            {
                errors.Add(SpecEntries.Describe(key, $"is defined twice: in {first} and in {source}", where));
                continue;
            }
            definedIn[key] = source;
            var rule = rules.GetValueOrDefault(key) ?? new KeyRule(key);
            if ((rule.Type ?? InferType(raw)) is not { } type)
            {
                errors.Add(SpecEntries.Describe(key, "has a template value (null or []) that does not show its type; give it a type in the rule table", where));
                continue;
            }
            var definition = new KeyDefinition(key, type, rule, SpecValue.Null, where);
            var (value, problem) = ValueRules.Parse(raw, definition);
            problem ??= ValueRules.Check(value!, definition);
            if (problem is not null)
            {
                errors.Add(SpecEntries.Describe(key, $"template default: {problem}", where));
                continue;
            }
            built[key] = definition with { Default = value! };
            keyOrder.Add(key);
        }

        var defined = built.ToImmutable();
        var expected = SpecRules.Keys.Select(rule => rule.Key)
            .Concat(SpecRules.KeyAliases.Values)
            .Concat(SpecRules.LinkedKeys.SelectMany(link => new[] { link.A, link.B }))
            .Concat(SpecRules.CrossRules.SelectMany(rule => rule.Keys));
        foreach (var key in keyOrder.Where(key => keyOrder.Any(other => other.StartsWith(key + ".", StringComparison.Ordinal))))
            errors.Add(SpecEntries.Describe(key, "is both a value and a section in the templates", defined[key].DefaultSource));
        foreach (var key in expected.Distinct(StringComparer.Ordinal).Where(key => !definedIn.ContainsKey(key)))
            errors.Add(new SpecError(key, $"the rule table names this key but no template in '{SpecsDirectory}' defines it"));
        if (errors.Count > 0)
            throw new SpecValidationException(errors);

        definitions = defined;
        order = [.. ResolvedSpec.TreeOrder(keyOrder)];
        sections = [.. order.SelectMany(key => Prefixes(key))];
        Defaults = new ResolvedSpec(order.Select(key => KeyValuePair.Create(key, definitions[key].Default)));

        var defaultErrors = FindErrors(Defaults);
        if (defaultErrors.Count > 0)
            throw new SpecValidationException(defaultErrors);
    }

    /// <summary>Absolute path of the templates directory.</summary>
    public string SpecsDirectory { get; }

    /// <summary>The templates alone, merged.</summary>
    public ResolvedSpec Defaults { get; }

    /// <summary>Every valid dotted key, in template order.</summary>
    public IReadOnlyList<string> Keys => order;

    /// <summary>A loader over <see cref="LocateSpecsDirectory"/>.</summary>
    public static SpecLoader CreateDefault() => new(LocateSpecsDirectory());

    /// <summary>
    /// Finds the templates: <c>$NVDINO_SPECS_DIR</c> if set; else <c>AppContext.BaseDirectory/specs</c>
    /// (where every project referencing this library gets a copy); else a <c>specs/</c> folder in the
    /// current directory or one of its parents (a repository checkout).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No location holds the templates; the message lists where it looked.</exception>
    public static string LocateSpecsDirectory()
    {
        var configured = Environment.GetEnvironmentVariable(SpecsDirectoryVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return HasTemplates(configured)
                ? Path.GetFullPath(configured)
                : throw new DirectoryNotFoundException(
                    $"{SpecsDirectoryVariable} is '{configured}', which holds no spec templates (train.yaml).");
        }

        var tried = new List<string>();
        var beside = Path.Combine(AppContext.BaseDirectory, "specs");
        tried.Add(beside);
        if (HasTemplates(beside))
            return Path.GetFullPath(beside);
        for (var directory = new DirectoryInfo(Directory.GetCurrentDirectory()); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "specs");
            tried.Add(candidate);
            if (HasTemplates(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException(
            $"No spec templates (specs/train.yaml) found; looked in {string.Join(", ", tried)}. Set {SpecsDirectoryVariable} to the templates directory.");
    }

    /// <summary>Merges the templates, then each file in order, then each <c>key=value</c> override, and validates the result.</summary>
    /// <param name="userFiles">YAML spec files; later files override earlier ones.</param>
    /// <param name="overrides">Dotted overrides such as <c>train.num_epochs=3</c> or <c>dataset.transform.global_crops_scale=[0.4,1.0]</c>; they override every file.</param>
    /// <exception cref="SpecValidationException">Every problem found: unreadable files, unknown keys, bad types, ranges, enums, cross-key rules.</exception>
    public ResolvedSpec Resolve(IEnumerable<string> userFiles, IEnumerable<string> overrides)
    {
        ArgumentNullException.ThrowIfNull(userFiles);
        var errors = new List<SpecError>();
        var documents = new List<SpecDocument>();
        foreach (var file in userFiles)
        {
            if (File.Exists(file))
                documents.Add(SpecDocument.FromFile(file));
            else
                errors.Add(new SpecError("", $"spec file '{file}' does not exist") { Source = file });
        }
        return Resolve(documents, overrides, errors);
    }

    /// <summary>
    /// A spec as a client sends it (a start message, a request body): JSON or YAML text holding only the keys it changes,
    /// or a whole resolved spec, merged over the templates like a spec file. Errors name <paramref name="name"/> as the source.
    /// </summary>
    /// <exception cref="SpecValidationException">Every problem found, each naming its key.</exception>
    public ResolvedSpec ResolveRequest(string spec, string name) => Resolve([new SpecDocument(name, spec)], [], []);

    /// <summary>As <see cref="Resolve(IEnumerable{string}, IEnumerable{string})"/>, with spec YAML given as text.</summary>
    public ResolvedSpec ResolveDocuments(IEnumerable<SpecDocument> documents, IEnumerable<string> overrides) =>
        Resolve(documents, overrides, []);

    /// <summary>
    /// A copy of <paramref name="spec"/> with <c>key=value</c> overrides applied and validated, e.g. to fill in
    /// paths known only once a stage has run. Linked keys follow an override of either of them.
    /// </summary>
    /// <exception cref="SpecValidationException">The spec or an override is invalid.</exception>
    public ResolvedSpec Apply(ResolvedSpec spec, IEnumerable<string> overrides)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(overrides);
        Validate(spec);
        var errors = new List<SpecError>();
        var merge = new Merge(this, errors, spec);
        foreach (var item in overrides)
            merge.ApplyOverride(item);
        return Finish(merge, errors);
    }

    /// <summary>
    /// The keys whose value in <paramref name="spec"/> is not the templates': the ones a request chose, whether it sent
    /// only them or a whole resolved spec. A key set to its template value reads as not chosen.
    /// </summary>
    public IReadOnlySet<string> KeysChangedFromTemplates(ResolvedSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return order.Where(key => spec.Values.TryGetValue(key, out var value) && !value.Equals(Defaults.Values[key])).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Checks a spec (e.g. one read back with <see cref="ResolvedSpec.FromJson"/>) against the templates and rules.</summary>
    /// <exception cref="SpecValidationException">Every problem found, including unknown and missing keys.</exception>
    public void Validate(ResolvedSpec spec)
    {
        var errors = FindErrors(spec);
        if (errors.Count > 0)
            throw new SpecValidationException(errors);
    }

    /// <summary>The problems <see cref="Validate"/> would throw for; empty when the spec is valid.</summary>
    public IReadOnlyList<SpecError> FindErrors(ResolvedSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var errors = new List<SpecError>();
        var failed = new HashSet<string>(StringComparer.Ordinal);
        var entries = new Dictionary<string, SpecEntry>(StringComparer.Ordinal);
        foreach (var (key, value) in spec.Values)
        {
            if (!definitions.TryGetValue(key, out var definition))
            {
                errors.Add(SpecEntries.Describe(key, UnknownKeyProblem(key), ResolvedSource));
                continue;
            }
            var (conformed, problem) = ValueRules.Conform(value, definition);
            if (problem is not null)
            {
                errors.Add(SpecEntries.Describe(key, problem, ResolvedSource));
                failed.Add(key);
            }
            entries[key] = new SpecEntry(conformed ?? definition.Default, ResolvedSource);
        }
        foreach (var key in order.Where(key => !entries.ContainsKey(key)))
        {
            errors.Add(SpecEntries.Describe(key, "is missing", ResolvedSource));
            failed.Add(key);
            entries[key] = new SpecEntry(definitions[key].Default, ResolvedSource);
        }
        foreach (var (a, b) in SpecRules.LinkedKeys)
        {
            if (!failed.Contains(a) && !failed.Contains(b) && !entries[a].Value.Equals(entries[b].Value))
            {
                errors.Add(SpecEntries.Describe(b,
                    $"{entries[b].Value} differs from {a} = {entries[a].Value}; both name the same setting and must agree", ResolvedSource));
                failed.Add(b);
            }
        }
        CheckRules(entries, failed, errors);
        return errors;
    }

    /// <summary>
    /// Every file or folder <paramref name="spec"/> names for a stage to read, as written (an absolute path, a URI,
    /// or a name relative to a folder the stage knows), with its key: what a client checks against the locations its
    /// deployment reads before it sends the spec. List values give one entry per element.
    /// </summary>
    public IReadOnlyList<(string Key, string Value)> InputLocations(ResolvedSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var found = new List<(string, string)>();
        foreach (var key in order.Where(key => definitions[key].Rule.Location == LocationRole.Input && spec.Values.ContainsKey(key)))
        {
            var value = spec.Values[key];
            var texts = value.Kind == ValueKind.List ? value.Items.Select(item => item.String) : [value.String];
            found.AddRange(texts.Where(text => !string.IsNullOrEmpty(text)).Select(text => (key, text!)));
        }
        return found;
    }

    /// <summary>What a key accepts and its default, e.g. "an integer >= 1 (default 100)", for help texts.</summary>
    /// <exception cref="KeyNotFoundException">No such key; the message names the closest one.</exception>
    public string Describe(string dottedKey) =>
        definitions.TryGetValue(dottedKey, out var definition)
            ? $"{definition.Expectation()} (default {definition.Default.ToLiteral()})"
            : throw new KeyNotFoundException($"{dottedKey}: {UnknownKeyProblem(dottedKey)}");

    private ResolvedSpec Resolve(IEnumerable<SpecDocument> documents, IEnumerable<string> overrides, List<SpecError> errors)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(overrides);
        var merge = new Merge(this, errors);
        foreach (var document in documents)
        {
            merge.NextLayer();
            if (ReadDocument(document, errors) is { } mapping)
                merge.Apply(mapping, "", line => $"{document.Name}:{line}");
        }
        merge.NextLayer();
        foreach (var item in overrides)
            merge.ApplyOverride(item);
        return Finish(merge, errors);
    }

    private ResolvedSpec Finish(Merge merge, List<SpecError> errors)
    {
        merge.ApplyLinks();
        CheckRules(merge.Entries, merge.Failed, errors);
        if (errors.Count > 0)
            throw new SpecValidationException(errors);
        return new ResolvedSpec(order.Select(key => KeyValuePair.Create(key, merge.Entries[key].Value)));
    }

    private void CheckRules(Dictionary<string, SpecEntry> entries, HashSet<string> failed, List<SpecError> errors)
    {
        var invalid = new HashSet<string>(failed, StringComparer.Ordinal);
        foreach (var key in order)
        {
            var entry = entries[key];
            if (invalid.Contains(key))
                continue;
            if (ValueRules.Check(entry.Value, definitions[key]) is { } problem)
            {
                errors.Add(SpecEntries.Describe(key, problem, entry.Source));
                invalid.Add(key);
            }
        }
        var view = new SpecEntries(entries);
        foreach (var rule in SpecRules.CrossRules.Where(rule => !rule.Keys.Any(invalid.Contains)))
            errors.AddRange(rule.Check(view));
    }

    private string UnknownKeyProblem(string key)
    {
        if (KeySuggestions.Closest(key, order) is { } closest)
            return $"unknown key; did you mean '{closest}'?";
        var siblings = KeySuggestions.NearestSiblings(key, order);
        if (siblings.Count > 0)
        {
            var parent = siblings[0][..siblings[0].LastIndexOf('.')];
            return $"unknown key; the keys under '{parent}' are: {string.Join(", ", siblings)}";
        }
        var topLevel = order.Select(known => known.Split('.')[0]).Distinct(StringComparer.Ordinal);
        return $"unknown key; the spec's sections are: {string.Join(", ", topLevel)}";
    }

    private IEnumerable<string> ChildrenOf(string section)
    {
        var prefix = section + ".";
        return order.Where(key => key.StartsWith(prefix, StringComparison.Ordinal))
            .Select(key => prefix + key[prefix.Length..].Split('.')[0])
            .Distinct(StringComparer.Ordinal);
    }

    private static RawMapping? ReadDocument(SpecDocument document, List<SpecError> errors)
    {
        (RawInput Root, long Line)? read;
        try
        {
            read = SpecYaml.Read(document.Yaml);
        }
        catch (SpecYamlException exception)
        {
            var source = $"{document.Name}:{exception.Line}";
            errors.Add(new SpecError("", $"{document.Name} {exception.Message} (from {source})") { Source = source });
            return null;
        }
        switch (read?.Root)
        {
            case null:
                return null;
            case RawMapping mapping:
                return mapping;
            case RawScalar { IsNull: true }:
                return null;
            default:
                var source = $"{document.Name}:{read.Value.Line}";
                errors.Add(new SpecError("", $"{document.Name} must be a mapping of sections such as model:, dataset:, train: (from {source})") { Source = source });
                return null;
        }
    }

    private static void CollectLeaves(RawMapping mapping, string prefix, string file, List<(string, RawInput, string)> leaves, List<SpecError> errors)
    {
        foreach (var entry in mapping.Entries)
        {
            var source = $"{file}:{entry.Line}";
            if (string.IsNullOrEmpty(entry.Key) || !KeyNamePattern().IsMatch(entry.Key))
            {
                errors.Add(SpecEntries.Describe(prefix + entry.Key, "is not a valid key name (lowercase letters, digits, underscores)", source));
                continue;
            }
            var key = prefix + entry.Key;
            if (entry.Value is RawMapping { Entries.Length: > 0 } child)
                CollectLeaves(child, key + ".", file, leaves, errors);
            else
                leaves.Add((key, entry.Value, source));
        }
    }

    [GeneratedRegex("^[a-z0-9_]+$")]
    private static partial Regex KeyNamePattern();

    /// <summary>The type a template value shows, or null when it shows none (null, [], {}).</summary>
    private static SpecType? InferType(RawInput raw) => raw switch
    {
        RawScalar { Quoted: true } => SpecType.String,
        RawScalar { IsNull: true } => null,
        RawScalar scalar => InferScalar(scalar.Text),
        RawSequence { Items.Length: 0 } => null,
        RawSequence sequence => sequence.Items.All(item => item is RawScalar { Quoted: false } scalar && InferScalar(scalar.Text) is SpecType.Int or SpecType.Float)
            ? SpecType.NumberList
            : SpecType.StringList,
        _ => null,
    };

    private static SpecType InferScalar(string text)
    {
        text = text.Trim();
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
            return SpecType.Int;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            return SpecType.Float;
        return text is "true" or "false" ? SpecType.Bool : SpecType.String;
    }

    private static bool HasTemplates(string directory) => File.Exists(Path.Combine(directory, "train.yaml"));

    private static IEnumerable<string> Prefixes(string key)
    {
        for (var dot = key.IndexOf('.'); dot >= 0; dot = key.IndexOf('.', dot + 1))
            yield return key[..dot];
    }

    /// <summary>State of one <see cref="Resolve(IEnumerable{SpecDocument}, IEnumerable{string})"/> call.</summary>
    /// <param name="start">The spec to start from; the templates when null.</param>
    private sealed class Merge(SpecLoader loader, List<SpecError> errors, ResolvedSpec? start = null)
    {
        public Dictionary<string, SpecEntry> Entries { get; } = loader.order.ToDictionary(
            key => key,
            key => start is null
                ? new SpecEntry(loader.definitions[key].Default, loader.definitions[key].DefaultSource)
                : new SpecEntry(ValueRules.Conform(start.Values[key], loader.definitions[key]).Value!, ResolvedSource),
            StringComparer.Ordinal);

        /// <summary>Keys whose input could not be read; their template default stays and rules skip them.</summary>
        public HashSet<string> Failed { get; } = new(StringComparer.Ordinal);

        /// <summary>The keys the user set, and the layer each was last set in: every document is one, the overrides together the last.</summary>
        private readonly Dictionary<string, int> layerOf = new(StringComparer.Ordinal);

        private int layer;

        /// <summary>What is set from here on lies over what was set before (see <see cref="ApplyLinks"/>).</summary>
        public void NextLayer() => layer++;

        /// <param name="sourceOf">Names where an entry came from, given its line.</param>
        public void Apply(RawMapping mapping, string prefix, Func<int, string> sourceOf)
        {
            foreach (var entry in mapping.Entries)
            {
                var source = sourceOf(entry.Line);
                if (string.IsNullOrWhiteSpace(entry.Key))
                {
                    errors.Add(SpecEntries.Describe(prefix.TrimEnd('.'), "holds a key that is not a plain name", source));
                    continue;
                }
                Set(prefix + entry.Key.Trim(), entry.Value, source, sourceOf);
            }
        }

        public void ApplyOverride(string item)
        {
            var source = $"--set {SpecLocations.Redact(item)}";
            var equals = item.IndexOf('=');
            if (equals <= 0 || item[..equals].Trim().Length == 0)
            {
                errors.Add(SpecEntries.Describe(item, "is not a key=value override, e.g. train.num_epochs=3", source));
                return;
            }
            var key = item[..equals].Trim();
            var text = item[(equals + 1)..].Trim();
            RawInput raw;
            if (text.Length > 0 && text[0] is '[' or '{' or '"' or '\'')
            {
                try
                {
                    raw = SpecYaml.Read(text)?.Root ?? new RawScalar("", Quoted: false);
                }
                catch (SpecYamlException exception)
                {
                    var shown = text.Length > 80 ? text[..80] + "…" : text;
                    errors.Add(SpecEntries.Describe(key, $"value {shown} {exception.Message}", source.Length > 200 ? source[..200] + "…" : source));
                    return;
                }
            }
            else
            {
                raw = new RawScalar(text, Quoted: false);
            }
            Set(key, raw, source, _ => source);
        }

        /// <summary>
        /// Linked keys are one setting: whichever the user set carries over to the other. Set both, in different
        /// layers (a parent's spec, then a request's keys over it), the later one wins; in the same layer to
        /// different values, they conflict.
        /// </summary>
        public void ApplyLinks()
        {
            foreach (var (a, b) in SpecRules.LinkedKeys)
            {
                bool setA = layerOf.ContainsKey(a), setB = layerOf.ContainsKey(b);
                if (setA && setB && layerOf[a] != layerOf[b])
                {
                    (setA, setB) = (layerOf[a] > layerOf[b], layerOf[b] > layerOf[a]);
                }
                if (setA && !setB)
                    Entries[b] = Entries[a] with { Source = $"{Entries[a].Source} via {a}" };
                else if (setB && !setA)
                    Entries[a] = Entries[b] with { Source = $"{Entries[b].Source} via {b}" };
                else if (setA && setB && !Entries[a].Value.Equals(Entries[b].Value))
                {
                    errors.Add(SpecEntries.Describe(b,
                        $"{Entries[b].Value} conflicts with {a} = {Entries[a].Value} (from {Entries[a].Source}); both name the same setting, so set only one of them",
                        Entries[b].Source));
                    Failed.Add(b);
                }
            }
        }

        private void Set(string name, RawInput raw, string source, Func<int, string> sourceOf)
        {
            var key = SpecRules.KeyAliases.GetValueOrDefault(name, name);
            if (loader.definitions.TryGetValue(key, out var definition))
            {
                var (value, problem) = ValueRules.Parse(raw, definition);
                if (problem is not null)
                {
                    errors.Add(SpecEntries.Describe(key, problem, source));
                    Failed.Add(key);
                    return;
                }
                Entries[key] = new SpecEntry(value!, source);
                layerOf[key] = layer;
                return;
            }

            if (SpecRules.DiscardedTaoKeys.Contains(name))
                return;

            foreach (var (prefix, reason) in SpecRules.UnusedTaoKeys)
            {
                if (name == prefix || name.StartsWith(prefix + ".", StringComparison.Ordinal))
                {
                    errors.Add(SpecEntries.Describe(name, $"is a TAO setting NvDinoPipeline does not use ({reason}); remove it", source));
                    return;
                }
            }

            if (loader.sections.Contains(name))
            {
                switch (raw)
                {
                    case RawMapping mapping:
                        Apply(mapping, name + ".", sourceOf);
                        break;
                    case RawScalar { IsNull: true }:
                        break;
                    default:
                        errors.Add(SpecEntries.Describe(name,
                            $"is a section, not a value; set its keys instead: {string.Join(", ", loader.ChildrenOf(name))}", source));
                        break;
                }
                return;
            }

            // Walk into an unknown section so each key inside gets its own suggestion ("trian.num_epochs" -> "train.num_epochs").
            if (raw is RawMapping { Entries.Length: > 0 } unknown)
            {
                Apply(unknown, name + ".", sourceOf);
                return;
            }
            errors.Add(SpecEntries.Describe(name, loader.UnknownKeyProblem(name), source));
        }
    }
}
