using System.Text.RegularExpressions;
using System.Xml.Linq;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>One deployable process: its project, its Dockerfile, compose service and Kubernetes names.</summary>
public sealed record ServiceSpec(string Name, string Project, string Queue, bool Gpu, PipelineStage? Stage)
{
    public string ProjectPath => $"services/{Project}/{Project}.csproj";

    public string Dockerfile => $"deploy/docker/{Name}.Dockerfile";

    public string KubernetesName => $"nvdino-{Name}";

    public string ImageRepository => $"nvdino/{Name}";

    public override string ToString() => Name;
}

/// <summary>The deployable services and readers of the files under deploy/ and docker-compose.yml.</summary>
public static partial class DeployFiles
{
    /// <summary>The stages that run on NVIDIA GPUs in a cluster (TorchSharp on CUDA, TensorRT).</summary>
    public static readonly PipelineStage[] GpuStages =
        [PipelineStage.Training, PipelineStage.Distillation, PipelineStage.EngineGeneration, PipelineStage.Inference, PipelineStage.Evaluation];

    /// <summary>The orchestrator and one worker per stage, named as in deploy/ (kebab case).</summary>
    public static IReadOnlyList<ServiceSpec> Services { get; } =
    [
        new("orchestrator", "NvDinoPipeline.Orchestrator", Queues.Orchestrator, false, null),
        .. StageCatalog.All.Select(entry => new ServiceSpec(
            Kebab(entry.Stage.ToString()), $"NvDinoPipeline.{entry.Stage}", entry.Queue, GpuStages.Contains(entry.Stage), entry.Stage)),
    ];

    public static TheoryData<string> ServiceNames()
    {
        var data = new TheoryData<string>();
        foreach (var service in Services)
        {
            data.Add(service.Name);
        }
        return data;
    }

    public static ServiceSpec Service(string name) => Services.Single(s => s.Name == name);

    /// <summary>The Worker-SDK projects under services/: every one of them is a deployable service.</summary>
    public static IReadOnlyList<string> WorkerProjectsInTree() =>
        Directory.EnumerateDirectories(Repo.PathOf("services"))
            .Select(folder => Path.Combine(folder, Path.GetFileName(folder) + ".csproj"))
            .Where(File.Exists)
            .Where(csproj => XDocument.Load(csproj).Root?.Attribute("Sdk")?.Value == "Microsoft.NET.Sdk.Worker")
            .Select(csproj => Path.GetFileNameWithoutExtension(csproj))
            .Order(StringComparer.Ordinal)
            .ToList();

    public static string Kebab(string pascal) => KebabBoundary().Replace(pascal, "$1-$2").ToLowerInvariant();

    [GeneratedRegex("([a-z0-9])([A-Z])")]
    private static partial Regex KebabBoundary();

    /// <summary>Every YAML document of a file, as plain dictionaries, lists and strings; merge keys (&lt;&lt;) resolved.</summary>
    public static IReadOnlyList<Dictionary<string, object?>> LoadYaml(string relativePath)
    {
        var path = Repo.PathOf(relativePath);
        using var reader = new StreamReader(path);
        var stream = new YamlStream();
        try
        {
            stream.Load(reader);
        }
        catch (YamlException exception)
        {
            throw new InvalidDataException($"{relativePath} is not valid YAML: {exception.Message}", exception);
        }
        return stream.Documents
            .Where(document => document.RootNode is YamlMappingNode)
            .Select(document => (Dictionary<string, object?>)Plain(document.RootNode)!)
            .ToList();
    }

    private static object? Plain(YamlNode node) => node switch
    {
        YamlMappingNode mapping => PlainMapping(mapping),
        YamlSequenceNode sequence => sequence.Children.Select(Plain).ToList(),
        YamlScalarNode scalar => scalar.Value,
        _ => null,
    };

    /// <summary>YAML merge keys: merged mappings first (earlier ones win), then the mapping's own keys override them.</summary>
    private static Dictionary<string, object?> PlainMapping(YamlMappingNode mapping)
    {
        var result = new Dictionary<string, object?>();
        foreach (var (key, value) in mapping.Children)
        {
            if (((YamlScalarNode)key).Value != "<<")
            {
                continue;
            }
            var sources = value is YamlSequenceNode list ? list.Children : [value];
            foreach (var source in sources)
            {
                foreach (var (mergedKey, mergedValue) in PlainMapping((YamlMappingNode)source))
                {
                    result.TryAdd(mergedKey, mergedValue);
                }
            }
        }
        foreach (var (key, value) in mapping.Children)
        {
            var name = ((YamlScalarNode)key).Value ?? "";
            if (name != "<<")
            {
                result[name] = Plain(value);
            }
        }
        return result;
    }

    /// <summary>
    /// Compose's interpolation with nothing set but the required variables: <c>${NAME:-default}</c> takes its default,
    /// <c>${NAME:?message}</c> (a value that has none) becomes <c>&lt;NAME&gt;</c>.
    /// </summary>
    public static string WithDefaults(string value) =>
        Interpolation().Replace(value, match => match.Groups[2].Value == "-" ? match.Groups[3].Value : $"<{match.Groups[1].Value}>");

    /// <summary>The variables a compose file requires (<c>${NAME:?message}</c>), in order of first use.</summary>
    public static IReadOnlyList<string> RequiredVariables(string text) =>
        [.. Interpolation().Matches(text).Where(m => m.Groups[2].Value == "?").Select(m => m.Groups[1].Value).Distinct()];

    /// <summary>The <c>NAME=value</c> lines of an env file (comments and blank lines skipped).</summary>
    public static Dictionary<string, string> EnvFile(string relativePath) =>
        File.ReadAllLines(Repo.PathOf(relativePath))
            .Select(line => line.Trim())
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select(line => line.Split('=', 2))
            .ToDictionary(parts => parts[0], parts => parts.Length > 1 ? parts[1] : "");

    [GeneratedRegex(@"\$\{(\w+):([-?])([^}]*)\}")]
    private static partial Regex Interpolation();

    /// <summary>A .NET TimeSpan or a Go/compose duration (<c>10m</c>, <c>1m30s</c>, <c>60s</c>).</summary>
    public static TimeSpan Duration(string value)
    {
        if (TimeSpan.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out var span))
        {
            return span;
        }
        var total = TimeSpan.Zero;
        var parts = DurationPart().Matches(value);
        if (parts.Count == 0 || string.Concat(parts.Select(p => p.Value)) != value)
        {
            throw new FormatException($"'{value}' is not a duration.");
        }
        foreach (Match part in parts)
        {
            var amount = double.Parse(part.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            total += part.Groups[2].Value switch
            {
                "h" => TimeSpan.FromHours(amount),
                "m" => TimeSpan.FromMinutes(amount),
                "s" => TimeSpan.FromSeconds(amount),
                "ms" => TimeSpan.FromMilliseconds(amount),
                _ => throw new FormatException($"'{value}' has an unknown unit."),
            };
        }
        return total;
    }

    [GeneratedRegex(@"(\d+(?:\.\d+)?)(ms|h|m|s)")]
    private static partial Regex DurationPart();
}

/// <summary>Navigation over the plain YAML model that names the missing key when a test fails.</summary>
public static class Yaml
{
    public static Dictionary<string, object?> Map(this Dictionary<string, object?> node, string key) =>
        node.TryGetValue(key, out var value) && value is Dictionary<string, object?> map
            ? map
            : throw new KeyNotFoundException($"'{key}' is missing or not a mapping (keys present: {string.Join(", ", node.Keys)}).");

    public static Dictionary<string, object?>? MapOrNull(this Dictionary<string, object?> node, string key) =>
        node.TryGetValue(key, out var value) ? value as Dictionary<string, object?> : null;

    public static List<object?> Seq(this Dictionary<string, object?> node, string key) =>
        node.TryGetValue(key, out var value) && value is List<object?> list
            ? list
            : throw new KeyNotFoundException($"'{key}' is missing or not a list (keys present: {string.Join(", ", node.Keys)}).");

    public static string Str(this Dictionary<string, object?> node, string key) =>
        node.TryGetValue(key, out var value) && value is string text
            ? text
            : throw new KeyNotFoundException($"'{key}' is missing or not a scalar (keys present: {string.Join(", ", node.Keys)}).");

    public static string? StrOrNull(this Dictionary<string, object?> node, string key) =>
        node.TryGetValue(key, out var value) ? value as string : null;

    public static IEnumerable<Dictionary<string, object?>> Maps(this List<object?> list) => list.OfType<Dictionary<string, object?>>();

    /// <summary>A path such as <c>spec.template.spec</c>.</summary>
    public static Dictionary<string, object?> At(this Dictionary<string, object?> node, string path) =>
        path.Split('.').Aggregate(node, (current, key) => current.Map(key));
}
