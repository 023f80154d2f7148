namespace NvDinoPipeline.Deploy.Tests;

/// <summary>A Dockerfile read into its global ARGs and build stages (continuation lines joined, comments dropped).</summary>
public sealed class Dockerfile
{
    private Dockerfile(IReadOnlyDictionary<string, string> globalArgs, IReadOnlyList<DockerStage> stages)
    {
        GlobalArgs = globalArgs;
        Stages = stages;
    }

    public IReadOnlyDictionary<string, string> GlobalArgs { get; }

    public IReadOnlyList<DockerStage> Stages { get; }

    /// <summary>The stage <c>docker build</c> builds without <c>--target</c>.</summary>
    public DockerStage Default => Stages[^1];

    public DockerStage Stage(string name) =>
        Stages.SingleOrDefault(s => s.Name == name)
        ?? throw new KeyNotFoundException($"No stage '{name}' (stages: {string.Join(", ", Stages.Select(s => s.Name))}).");

    /// <summary>A FROM reference with global ARG defaults substituted (<c>${DOTNET_VERSION}</c> → <c>10.0</c>).</summary>
    public string Resolve(string text) =>
        GlobalArgs.Aggregate(text, (current, arg) => current.Replace($"${{{arg.Key}}}", arg.Value).Replace($"${arg.Key}", arg.Value));

    public static Dockerfile Load(string relativePath)
    {
        var lines = File.ReadAllLines(Repo.PathOf(relativePath));
        var instructions = new List<(string Keyword, string Arguments)>();
        var current = "";
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.StartsWith('#') || (line.Length == 0 && current.Length == 0))
            {
                continue;
            }
            if (line.EndsWith('\\'))
            {
                current += line[..^1].Trim() + " ";
                continue;
            }
            current += line;
            if (current.Trim().Length > 0)
            {
                var text = current.Trim();
                var space = text.IndexOf(' ');
                instructions.Add(space < 0 ? (text.ToUpperInvariant(), "") : (text[..space].ToUpperInvariant(), text[(space + 1)..].Trim()));
            }
            current = "";
        }

        var globalArgs = new Dictionary<string, string>();
        var stages = new List<DockerStage>();
        foreach (var (keyword, arguments) in instructions)
        {
            if (keyword == "FROM")
            {
                var parts = arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var name = parts.Length >= 3 && parts[^2].Equals("AS", StringComparison.OrdinalIgnoreCase) ? parts[^1] : $"#{stages.Count}";
                stages.Add(new DockerStage(name, parts[0]));
            }
            else if (stages.Count == 0)
            {
                if (keyword == "ARG" && arguments.Split('=', 2) is [var key, var value])
                {
                    globalArgs[key] = value;
                }
            }
            else
            {
                stages[^1].Instructions.Add((keyword, arguments));
            }
        }
        return new Dockerfile(globalArgs, stages);
    }
}

public sealed record DockerStage(string Name, string From)
{
    public List<(string Keyword, string Arguments)> Instructions { get; } = [];

    public IEnumerable<string> All(string keyword) => Instructions.Where(i => i.Keyword == keyword).Select(i => i.Arguments);

    public string? Last(string keyword) => All(keyword).LastOrDefault();

    /// <summary>Values set by ENV lines (<c>ENV A=1 \ B=2</c>).</summary>
    public Dictionary<string, string> Environment() =>
        All("ENV")
            .SelectMany(arguments => arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(pair => pair.Split('=', 2))
            .Where(pair => pair.Length == 2)
            .GroupBy(pair => pair[0])
            .ToDictionary(group => group.Key, group => group.Last()[1]);
}
