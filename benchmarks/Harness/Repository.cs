namespace NvDinoPipeline.Benchmarks.Harness;

/// <summary>The checkout the benchmark runs from: the folder holding NvDinoPipeline.sln.</summary>
public static class Repository
{
    /// <summary>The checkout's root, or the current directory when the benchmark runs from outside one.</summary>
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "NvDinoPipeline.sln")))
            {
                return folder.FullName;
            }
        }
        return Directory.GetCurrentDirectory();
    }
}
