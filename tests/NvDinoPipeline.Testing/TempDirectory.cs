namespace NvDinoPipeline.Testing;

/// <summary>A new empty folder under the system temp folder (/tmp), deleted with everything in it on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory(string prefix = "nvdino-test")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), TestServices.UniqueName(prefix));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>A path inside this folder (nothing is created).</summary>
    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public override string ToString() => Path;

    public void Dispose()
    {
        for (var attempt = 1; Directory.Exists(Path); attempt++)
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException) when (attempt < 3)
            {
                // A process the test started may still be closing a file in here.
                Thread.Sleep(100 * attempt);
            }
        }
    }
}
