using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace NvDinoPipeline.Storage.Tests;

public sealed class ArtifactStoreOptionsTests
{
    [Fact]
    public void AddArtifactStore_binds_the_ArtifactStore_section()
    {
        using var provider = Services(new()
        {
            ["ArtifactStore:Root"] = "s3://nvdino-artifacts/team-a",
            ["ArtifactStore:S3:ServiceUrl"] = "http://127.0.0.1:45690",
            ["ArtifactStore:S3:PartSizeBytes"] = "8388608",
        });

        var store = provider.GetRequiredService<IArtifactStore>();
        var options = provider.GetRequiredService<IOptions<ArtifactStoreOptions>>().Value;

        Assert.Equal(new Uri("s3://nvdino-artifacts/team-a/"), store.Root);
        Assert.Same(store, provider.GetRequiredService<ArtifactStore>());
        Assert.Equal(8L * 1024 * 1024, options.S3.PartSizeBytes);
        var pipelineId = Guid.NewGuid();
        var jobId = Guid.NewGuid();
        Assert.Equal(new Uri($"s3://nvdino-artifacts/team-a/{pipelineId}/{jobId}/"), store.JobFolder(pipelineId, jobId));
    }

    [Fact]
    public void The_default_root_is_a_folder_under_the_working_directory()
    {
        using var provider = Services(new());

        var store = provider.GetRequiredService<IArtifactStore>();

        Assert.Equal(new Uri(Path.GetFullPath(".nvdino/artifacts") + "/"), store.Root);
    }

    [Fact]
    public void An_absolute_path_is_accepted_as_root()
    {
        using var provider = Services(new() { ["ArtifactStore:Root"] = "/var/lib/nvdino/artifacts" });

        Assert.Equal(new Uri("file:///var/lib/nvdino/artifacts/"), provider.GetRequiredService<IArtifactStore>().Root);
    }

    [Theory]
    [InlineData("ArtifactStore:Root", "ftp://host/artifacts", "ArtifactStore:Root 'ftp://host/artifacts' has scheme 'ftp'")]
    [InlineData("ArtifactStore:Root", "relative/artifacts", "neither an absolute URI nor an absolute path")]
    [InlineData("ArtifactStore:Root", "s3://Bad_Bucket/x", "valid bucket")]
    [InlineData("ArtifactStore:S3:AccessKey", "key-without-secret", "AccessKey and ArtifactStore:S3:SecretKey must be given together")]
    [InlineData("ArtifactStore:S3:PartSizeBytes", "1024", "ArtifactStore:S3:PartSizeBytes is 1024")]
    [InlineData("ArtifactStore:S3:ServiceUrl", "127.0.0.1:45690", "ServiceUrl '127.0.0.1:45690' is not an absolute http:// or https:// URL")]
    public async Task A_bad_setting_stops_the_host_at_start_up_and_names_the_key(string key, string value, string expected)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [key] = value });
        builder.Services.AddArtifactStore(builder.Configuration);
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task A_file_uri_is_neither_read_nor_written_when_the_root_is_a_bucket_and_no_read_root_names_its_folder()
    {
        using var folder = new TempFolder();
        var uri = folder.Uri.Append("spec.yaml");
        await File.WriteAllTextAsync(uri.LocalPath, "train:\n  num_epochs: 1\n");
        using var store = TestStores.Create("s3://nvdino-artifacts/", o => o.S3.ServiceUrl = "http://127.0.0.1:1");

        var read = await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => store.GetInfoAsync(uri, CancellationToken.None));
        var write = await Assert.ThrowsAsync<ArtifactAccessDeniedException>(
            () => store.PutAsync(uri, new MemoryStream("overwritten"u8.ToArray()), CancellationToken.None));

        Assert.Contains("is outside the locations this deployment reads (s3://nvdino-artifacts/)", read.Message);
        Assert.Contains("ArtifactStore:AllowedReadRoots", read.Message);
        Assert.Contains("is outside the artifact root s3://nvdino-artifacts/", write.Message);
        Assert.Equal("train:\n  num_epochs: 1\n", await File.ReadAllTextAsync(uri.LocalPath));
    }

    [Fact]
    public async Task A_folder_in_AllowedReadRoots_is_read_but_never_written()
    {
        using var folder = new TempFolder();
        var uri = folder.Uri.Append("spec.yaml");
        await File.WriteAllTextAsync(uri.LocalPath, "train:\n  num_epochs: 1\n");
        using var provider = Services(new()
        {
            ["ArtifactStore:Root"] = "s3://nvdino-artifacts/",
            ["ArtifactStore:S3:ServiceUrl"] = "http://127.0.0.1:1",
            ["ArtifactStore:AllowedReadRoots:0"] = folder.Path,
            ["ArtifactStore:AllowedReadRoots:1"] = "s3://datasets/team-a/",
        });
        var store = provider.GetRequiredService<IArtifactStore>();

        var info = await store.GetInfoAsync(uri, CancellationToken.None);
        await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => store.PutAsync(uri, new MemoryStream([1]), CancellationToken.None));

        Assert.Equal(23, info!.Size);
        Assert.Equal(["s3://nvdino-artifacts/", folder.Uri.AbsoluteUri, "s3://datasets/team-a/"], store.Access.ReadRoots.Select(r => r.AbsoluteUri));
    }

    [Theory]
    [InlineData("ftp://host/data/", "ArtifactStore:AllowedReadRoots:0 'ftp://host/data/' has scheme 'ftp'")]
    [InlineData("data/images", "ArtifactStore:AllowedReadRoots:0 'data/images' is neither an absolute URI nor an absolute path")]
    [InlineData("s3://AKIAEXAMPLE:wJalrXUtnFEMI@datasets/", "ArtifactStore:AllowedReadRoots:0 carries a user name or password")]
    public async Task A_bad_read_root_stops_the_host_at_start_up_naming_the_entry_and_never_a_password(string root, string expected)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["ArtifactStore:AllowedReadRoots:0"] = root });
        builder.Services.AddArtifactStore(builder.Configuration);
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain("wJalrXUtnFEMI", error.Message);
    }

    [Fact]
    public void Append_escapes_segments_and_refuses_climbing_out_of_the_folder()
    {
        var folder = new Uri("s3://bucket/runs/");

        Assert.Equal("s3://bucket/runs/a%20b/c%23d.bin", folder.Append("a b/c#d.bin").AbsoluteUri);
        Assert.Throws<ArgumentException>(() => folder.Append("../other/x"));
        Assert.Throws<ArgumentException>(() => new Uri("s3://bucket/runs").Append("x"));
    }

    private static ServiceProvider Services(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection().AddArtifactStore(configuration).BuildServiceProvider(validateScopes: true);
    }
}
