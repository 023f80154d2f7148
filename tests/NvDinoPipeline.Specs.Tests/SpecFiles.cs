namespace NvDinoPipeline.Specs.Tests;

/// <summary>The loader over the templates copied next to the tests, and user spec files in a temp folder.</summary>
internal sealed class SpecFiles : IDisposable
{
    public static SpecLoader Loader { get; } = new(Path.Combine(AppContext.BaseDirectory, "specs"));

    private readonly string directory = Directory.CreateTempSubdirectory("nvdino-specs-").FullName;

    public string Write(string name, string yaml)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, yaml);
        return path;
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
