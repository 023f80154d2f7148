namespace NvDinoPipeline.Specs;

/// <summary>YAML spec text and the name errors refer to it by (a file path, or e.g. "request body").</summary>
public sealed record SpecDocument(string Name, string Yaml)
{
    /// <summary>Reads a spec file; the path as given becomes the name used in error messages.</summary>
    public static SpecDocument FromFile(string path) => new(path, File.ReadAllText(path));
}
