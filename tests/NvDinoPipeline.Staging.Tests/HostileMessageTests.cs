using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Staging.Tests;

/// <summary>
/// StageDataset commands sent straight to the staging queue, as anyone on the broker could, naming what a job must
/// not reach: files outside the read roots (directly, through '..', through a link), another bucket, a URI with
/// credentials, or another pipeline's job folder as output. The worker refuses each with its rule as the job's
/// failure; the victim pipeline's staged artifacts are the same by SHA-256 afterwards and nothing appears outside
/// the attackers' own job folders.
/// </summary>
public sealed class HostileMessageTests : IAsyncLifetime
{
    private readonly TempDirectory _home = new("nvdino-hostile-messages");
    private IHost _host = null!;
    private ITestHarness _harness = null!;
    private IArtifactStore _store = null!;
    private DatasetStaged _victim = null!;
    private HostileLayout _layout = null!;

    private string Inputs => _layout.ReadRoot;

    public async Task InitializeAsync()
    {
        _layout = new HostileLayout(_home.Path, "inputs");
        var archive = DatasetStagingRunnerTests.ArchiveOf(DatasetStagingRunnerTests.SampleImages()).WriteTarGz(Path.Combine(Inputs, "victim.tar.gz"));

        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["State:Provider"] = "Sqlite",
            ["State:ConnectionString"] = $"Data Source={_home.Combine("state.db")}",
            ["ArtifactStore:Root"] = new Uri(_home.Combine("artifacts") + "/").AbsoluteUri,
            ["ArtifactStore:AllowedReadRoots:0"] = Inputs,
            ["Workers:ScratchDirectory"] = _home.Combine("scratch"),
            ["Staging:MaxSide"] = "32",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        });
        builder.AddNvDinoPipeline(pipeline => pipeline.AddStagingWorker());
        builder.Services.AddMassTransitTestHarness();
        builder.Services.Configure<TestHarnessOptions>(options =>
        {
            options.TestInactivityTimeout = TimeSpan.FromSeconds(60);
            options.TestTimeout = TimeSpan.FromSeconds(90);
        });
        _host = builder.Build();
        await _host.StartAsync();
        _harness = _host.Services.GetRequiredService<ITestHarness>();
        _store = _host.Services.GetRequiredService<IArtifactStore>();

        var victim = Command(TestImages.FileUri(archive));
        await SendAsync(victim);
        DatasetStaged? staged = null;
        Assert.True(await _harness.Published.Any<DatasetStaged>(m => (staged = m.Context.Message).JobId == victim.JobId), "the victim was not staged");
        _victim = staged!;
    }

    public async Task DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
        _home.Dispose();
    }

    private string VictimFolder => _store.JobFolder(_victim.PipelineId, _victim.JobId).LocalPath;

    private StageDataset Command(Uri source, Uri? output = null)
    {
        var pipelineId = Guid.NewGuid();
        var jobId = Guid.NewGuid();
        return new StageDataset
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = "{}",
            OutputUri = output ?? _store.JobFolder(pipelineId, jobId),
            SourceUri = source,
            Role = DatasetRole.Train,
            // Past the staging cache, which would otherwise hand over the victim's staging of the same archive.
            Force = true,
        };
    }

    private async Task SendAsync(StageDataset command)
    {
        var endpoint = await _harness.Bus.GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Staging).Queue));
        await endpoint.Send(command);
    }

    private async Task<string> FailureOfAsync(StageDataset command)
    {
        await SendAsync(command);
        StageFailed? failed = null;
        Assert.True(await _harness.Published.Any<StageFailed>(m => (failed = m.Context.Message).JobId == command.JobId), "no StageFailed was published");
        return failed!.Reason;
    }

    /// <summary>Every file under the temp folder except the state database and the attackers' own job folders.</summary>
    private SortedDictionary<string, string> Everything(params StageDataset[] attackers)
    {
        var all = FolderFingerprint.Of(_home.Path);
        var own = attackers.Select(a => Path.GetRelativePath(_home.Path, _store.JobFolder(a.PipelineId, a.JobId).LocalPath)).ToList();
        foreach (var key in all.Keys.Where(k => k.StartsWith("state.db", StringComparison.Ordinal) || k.StartsWith("scratch", StringComparison.Ordinal)
            || own.Any(o => k.StartsWith(o, StringComparison.Ordinal))).ToList())
        {
            all.Remove(key);
        }
        return all;
    }

    [Theory]
    [MemberData(nameof(HostileLayout.Reads), MemberType = typeof(HostileLayout))]
    public async Task A_source_outside_the_read_roots_fails_the_job_with_the_rule_and_touches_nothing(string template, string rule)
    {
        var command = Command(_layout.Location(template));
        var victim = FolderFingerprint.Of(VictimFolder);
        var before = Everything(command);

        var reason = await FailureOfAsync(command);

        Assert.StartsWith("Source '", reason);
        Assert.Contains(rule, reason);
        HostileLayout.AssertRevealsNothing(reason);
        Assert.Equal(victim, FolderFingerprint.Of(VictimFolder));
        Assert.Equal(before, Everything(command));
        Assert.NotEmpty(victim);
    }

    [Fact]
    public async Task A_command_whose_output_is_another_pipelines_job_folder_fails_before_anything_is_written()
    {
        var command = Command(TestImages.FileUri(Path.Combine(Inputs, "victim.tar.gz")), output: new Uri(_store.JobFolder(_victim.PipelineId, _victim.JobId).AbsoluteUri));
        var victim = FolderFingerprint.Of(VictimFolder);
        var before = Everything();

        var reason = await FailureOfAsync(command);

        Assert.Contains($"is not the folder of job {command.JobId} of pipeline {command.PipelineId}", reason);
        Assert.Equal(victim, FolderFingerprint.Of(VictimFolder));
        Assert.Equal(before, Everything());
    }
}
