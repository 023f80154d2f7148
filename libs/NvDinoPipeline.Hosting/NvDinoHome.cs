using Microsoft.Extensions.Configuration;

namespace NvDinoPipeline.Hosting;

/// <summary>
/// Where the embedded default keeps its state and artifacts: <c>$NVDINO_HOME</c>, else <c>~/.nvdino</c>.
/// Every setting here is only a default; configuration and environment variables override it.
/// </summary>
public static class NvDinoHome
{
    public static string Directory =>
        Environment.GetEnvironmentVariable("NVDINO_HOME") is { Length: > 0 } home
            ? Path.GetFullPath(home)
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nvdino");

    public static IReadOnlyDictionary<string, string?> Defaults(string home) => new Dictionary<string, string?>
    {
        ["Messaging:Transport"] = "InMemory",
        ["State:Provider"] = "Sqlite",
        ["State:ConnectionString"] = $"Data Source={Path.Combine(home, "state.db")}",
        ["ArtifactStore:Root"] = new Uri(Path.Combine(home, "artifacts") + "/").AbsoluteUri,
        ["Workers:ScratchDirectory"] = Path.Combine(home, "scratch"),
    };

    /// <summary>Adds the defaults underneath every other configuration source.</summary>
    public static void AddDefaults(IConfigurationBuilder configuration)
    {
        var defaults = new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = Defaults(Directory) };
        configuration.Sources.Insert(0, defaults);
    }
}
