namespace NvDinoPipeline.Testing;

/// <summary>The repository checkout the tests run from (the folder holding NvDinoPipeline.sln).</summary>
public static class Repo
{
    public static string Root { get; } = Find();

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string Find()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "NvDinoPipeline.sln")))
            {
                return folder.FullName;
            }
        }
        throw new DirectoryNotFoundException($"No NvDinoPipeline.sln above {AppContext.BaseDirectory}: these tests read the repository's files.");
    }
}
