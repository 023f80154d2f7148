using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Staging.Tests;

/// <summary>The staging worker as the host wires it: a StageDataset command in, a DatasetStaged event out.</summary>
public sealed class StagingWorkerTests : IDisposable
{
    private readonly TempDirectory _home = new("nvdino-staging-host");

    public void Dispose() => _home.Dispose();

    private IHost BuildHost(params (string Key, string Value)[] settings)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["State:Provider"] = "Sqlite",
            ["State:ConnectionString"] = $"Data Source={_home.Combine("state.db")}",
            ["ArtifactStore:Root"] = new Uri(_home.Combine("artifacts") + "/").AbsoluteUri,
            ["ArtifactStore:AllowedReadRoots:0"] = _home.Combine("inputs"),
            ["Workers:ScratchDirectory"] = _home.Combine("scratch"),
            ["Staging:MaxSide"] = "32",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        });
        builder.Configuration.AddInMemoryCollection(settings.ToDictionary(s => s.Key, s => (string?)s.Value));
        builder.AddNvDinoPipeline(pipeline => pipeline.AddStagingWorker());
        builder.Services.AddMassTransitTestHarness();
        // A staging job is quiet on the bus while it works; the default inactivity window would end the wait early.
        builder.Services.Configure<TestHarnessOptions>(options =>
        {
            options.TestInactivityTimeout = TimeSpan.FromSeconds(60);
            options.TestTimeout = TimeSpan.FromSeconds(90);
        });
        return builder.Build();
    }

    [Fact]
    public async Task A_StageDataset_command_on_the_staging_queue_publishes_DatasetStaged()
    {
        var images = DatasetStagingRunnerTests.SampleImages();
        Directory.CreateDirectory(_home.Combine("inputs"));
        var archive = DatasetStagingRunnerTests.ArchiveOf(images).WriteTarGz(_home.Combine("inputs", "images.tar.gz"));
        using var host = BuildHost();
        await host.StartAsync();
        var harness = host.Services.GetRequiredService<ITestHarness>();
        var pipelineId = Guid.NewGuid();
        var jobId = Guid.NewGuid();
        var outputUri = TestImages.FileUri(_home.Combine("artifacts", pipelineId.ToString(), jobId.ToString()) + "/");

        var endpoint = await harness.Bus.GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Staging).Queue));
        await endpoint.Send(new StageDataset
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = "{}",
            OutputUri = outputUri,
            SourceUri = TestImages.FileUri(archive),
            Role = DatasetRole.Test,
        });

        DatasetStaged? staged = null;
        Assert.True(await harness.Published.Any<DatasetStaged>(m => (staged = m.Context.Message).JobId == jobId), "no DatasetStaged was published");
        Assert.Equal((pipelineId, DatasetRole.Test, images.Count), (staged!.PipelineId, staged.Role, staged.ImageCount));
        Assert.Equal(new Uri(outputUri, "shards/"), staged.DatasetUri);
        Assert.True(File.Exists(staged.ManifestUri.LocalPath));
        await host.StopAsync();
    }

    [Fact]
    public async Task A_hostile_archive_ends_as_StageFailed_with_the_reason()
    {
        Directory.CreateDirectory(_home.Combine("inputs"));
        var archive = new TestArchive().File("../../evil.png", ImageFiles.Png(4, 4, seed: 1)).File("readme.txt", "x"u8.ToArray())
            .WriteTarGz(_home.Combine("inputs", "hostile.tar.gz"));
        using var host = BuildHost();
        await host.StartAsync();
        var harness = host.Services.GetRequiredService<ITestHarness>();
        var jobId = Guid.NewGuid();
        var pipelineId = Guid.NewGuid();

        var endpoint = await harness.Bus.GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Staging).Queue));
        await endpoint.Send(new StageDataset
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = "{}",
            OutputUri = TestImages.FileUri(_home.Combine("artifacts", pipelineId.ToString(), jobId.ToString()) + "/"),
            SourceUri = TestImages.FileUri(archive),
            Role = DatasetRole.Train,
        });

        StageFailed? failed = null;
        Assert.True(await harness.Published.Any<StageFailed>(m => (failed = m.Context.Message).JobId == jobId), "no StageFailed was published");
        Assert.True(failed!.Reason.Contains("has no usable image"), failed.Reason);
        Assert.Contains("1 unsafe_path", failed.Reason);
        await host.StopAsync();
    }

    [Fact]
    public void An_invalid_staging_setting_stops_the_host_at_start_naming_it()
    {
        using var host = BuildHost(("Staging:MaxSide", "2"));

        var failure = Assert.ThrowsAny<Microsoft.Extensions.Options.OptionsValidationException>(() => host.StartAsync().GetAwaiter().GetResult());

        Assert.Contains("MaxSide", failure.Message);
    }
}
