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
    public async Task File_uris_are_served_whatever_the_configured_root()
    {
        using var folder = new TempFolder();
        using var store = TestStores.Create("s3://nvdino-artifacts/", o => o.S3.ServiceUrl = "http://127.0.0.1:1");
        var uri = folder.Uri.Append("spec.yaml");

        await store.PutAsync(uri, new MemoryStream("train:\n  num_epochs: 1\n"u8.ToArray()), CancellationToken.None);

        Assert.Equal(23, (await store.GetInfoAsync(uri, CancellationToken.None))!.Size);
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
