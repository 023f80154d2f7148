namespace NvDinoPipeline.Specs;

/// <summary>YAML spec text and the name errors refer to it by (a file path, or e.g. "request body").</summary>
public sealed record SpecDocument(string Name, string Yaml)
{
    /// <summary>Reads a spec file; the path as given becomes the name used in error messages. Reading stops past
    /// <see cref="SpecLimits.MaxDocumentChars"/>, so an endless or huge file is refused as too long instead of read.</summary>
    public static SpecDocument FromFile(string path)
    {
        using var reader = new StreamReader(path);
        var buffer = new char[SpecLimits.MaxDocumentChars + 1];
        var length = reader.ReadBlock(buffer, 0, buffer.Length);
        return new(path, new string(buffer, 0, length));
    }
}
