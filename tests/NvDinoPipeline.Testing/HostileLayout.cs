namespace NvDinoPipeline.Testing;

/// <summary>
/// A folder laid out for hostile-location tests: a secret file outside every root, and a read root holding a link to
/// that file and a link to its folder. <see cref="Reads"/> are the locations a spec or a message could name to reach the
/// secret, each with the rule that refuses it.
/// </summary>
public sealed class HostileLayout
{
    /// <summary>What the secret file holds: no refusal may quote it, nor its bytes in hex.</summary>
    public const string Secret = "root:$6$TOP-SECRET-HASH:19000:0:99999:7:::";

    public const string Credential = "wJalrXUtnFEMI";

    /// <param name="baseFolder">An empty folder to lay out.</param>
    /// <param name="readRoot">The name of the folder under it that the store may read.</param>
    public HostileLayout(string baseFolder, string readRoot)
    {
        Base = baseFolder;
        ReadRoot = Path.Combine(baseFolder, readRoot);
        OutsideFile = Path.Combine(baseFolder, "outside", "shadow");
        Directory.CreateDirectory(ReadRoot);
        Directory.CreateDirectory(Path.GetDirectoryName(OutsideFile)!);
        File.WriteAllText(OutsideFile, Secret);
        File.CreateSymbolicLink(Path.Combine(ReadRoot, "shadow-link"), OutsideFile);
        Directory.CreateSymbolicLink(Path.Combine(ReadRoot, "outside-link"), Path.GetDirectoryName(OutsideFile)!);
    }

    public string Base { get; }

    public string ReadRoot { get; }

    public string OutsideFile { get; }

    public static TheoryData<string, string> Reads => new()
    {
        { "file:///etc/shadow", "is outside the locations this deployment reads" },
        { "file://{base}/outside/shadow", "is outside the locations this deployment reads" },
        { "file://{readable}/../outside/shadow", "is outside the locations this deployment reads" },
        { "file://{readable}/%2e%2e/outside/shadow", "is outside the locations this deployment reads" },
        { "file://{readable}/a%2f..%2f..%2foutside%2fshadow", "is outside the locations this deployment reads" },
        { "file://{readable}/shadow-link", "leads through a symbolic link out of the locations this deployment reads" },
        { "file://{readable}/outside-link/shadow", "leads through a symbolic link out of the locations this deployment reads" },
        { "file://backup-host/{readable}/x", "names host 'backup-host'" },
        { "s3://other-team/datasets/train.tar.gz", "is outside the locations this deployment reads" },
        { $"s3://AKIAEXAMPLE:{Credential}@other-team/train.tar.gz", "carries a user name or password" },
        { "https://example.com/train.tar.gz", "has scheme 'https'" },
    };

    /// <summary>A location of <see cref="Reads"/> with its folders filled in.</summary>
    public Uri Location(string template) => new(template
        .Replace("{base}", Base, StringComparison.Ordinal)
        .Replace("{readable}", ReadRoot, StringComparison.Ordinal));

    /// <summary>Fails when <paramref name="message"/> quotes the secret, its bytes, or the credential of a location.</summary>
    public static void AssertRevealsNothing(string message)
    {
        Assert.DoesNotContain("TOP-SECRET", message);
        Assert.DoesNotContain(Convert.ToHexString("root:$6$"u8), message);
        Assert.DoesNotContain(Credential, message);
    }
}
