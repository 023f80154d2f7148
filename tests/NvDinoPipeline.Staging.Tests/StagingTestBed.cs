using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Staging.Tests;

/// <summary>
/// A real artifact store (a temp folder, or a bucket on the S3 test server), the staging runner over it,
/// and a stage context that records progress reports. Everything lives under one temp folder.
/// </summary>
internal sealed class StagingTestBed : IDisposable
{
    private StagingTestBed(TempDirectory temp, ArtifactStore store, StagingOptions options)
    {
        Temp = temp;
        Store = store;
        Options = options;
        RunnerStore = store;
        SourceStore = store;
        Directory.CreateDirectory(Inputs);
        Directory.CreateDirectory(ScratchRoot);
    }

    public TempDirectory Temp { get; }

    public ArtifactStore Store { get; }

    /// <summary>Puts sources in place as another tool would: the workers' store writes only under its root.</summary>
    public ArtifactStore SourceStore { get; private init; } = null!;

    public StagingOptions Options { get; }

    /// <summary>Where tests put their sources: a folder the store may read.</summary>
    public string Inputs => InputsOf(Temp);

    /// <summary>The workers' scratch root; each job gets its own folder under it.</summary>
    public string ScratchRoot => Temp.Combine("scratch");

    public ConcurrentQueue<StageProgress> Progress { get; } = new();

    /// <summary>A store rooted at a temp folder. Small staged images (<c>MaxSide</c> 32) keep tests fast.</summary>
    /// <param name="readableFolder">A folder outside the bed the store may read too (a source shared by several tests).</param>
    public static StagingTestBed OnFiles(Action<StagingOptions>? configure = null, string? readableFolder = null)
    {
        var temp = new TempDirectory("nvdino-staging");
        var root = Path.Combine(temp.Path, "artifacts");
        Directory.CreateDirectory(root);
        var store = new ArtifactStore(Microsoft.Extensions.Options.Options.Create(new ArtifactStoreOptions
        {
            Root = new Uri(root + "/").AbsoluteUri,
            AllowedReadRoots = [InputsOf(temp), .. readableFolder is null ? Array.Empty<string>() : [readableFolder]],
        }));
        return new StagingTestBed(temp, store, Configure(configure));
    }

    public static StagingTestBed OnS3(S3Endpoint endpoint, string bucket, Action<StagingOptions>? configure = null)
    {
        var temp = new TempDirectory("nvdino-staging-s3");
        var options = new ArtifactStoreOptions { Root = $"s3://{bucket}/artifacts/", AllowedReadRoots = [$"s3://{bucket}/", InputsOf(temp)] };
        options.S3.ServiceUrl = endpoint.ServiceUrl.ToString();
        options.S3.AccessKey = endpoint.AccessKey;
        options.S3.SecretKey = endpoint.SecretKey;
        options.S3.Region = endpoint.Region;
        var store = new ArtifactStore(Microsoft.Extensions.Options.Options.Create(options));
        var sources = new ArtifactStore(Microsoft.Extensions.Options.Options.Create(new ArtifactStoreOptions { Root = $"s3://{bucket}/", S3 = options.S3 }));
        return new StagingTestBed(temp, store, Configure(configure)) { SourceStore = sources };
    }

    private static string InputsOf(TempDirectory temp) => temp.Combine("inputs");

    private static StagingOptions Configure(Action<StagingOptions>? configure)
    {
        var options = new StagingOptions { MaxSide = 32, ProgressInterval = TimeSpan.FromMilliseconds(10) };
        configure?.Invoke(options);
        return options;
    }

    /// <summary>The store the runner sees; tests may wrap the real one (a slow network, say).</summary>
    public IArtifactStore RunnerStore { get; set; } = null!;

    public DatasetStagingRunner Runner() =>
        new(RunnerStore, Microsoft.Extensions.Options.Options.Create(Options), NullLogger<DatasetStagingRunner>.Instance);

    public StageDataset Command(Uri source, bool force = false)
    {
        var pipelineId = Guid.NewGuid();
        var jobId = Guid.NewGuid();
        return new StageDataset
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = "{}",
            OutputUri = Store.JobFolder(pipelineId, jobId),
            SourceUri = source,
            Role = DatasetRole.Train,
            Force = force,
        };
    }

    public string ScratchOf(StageDataset command) => Path.Combine(ScratchRoot, command.PipelineId.ToString(), command.JobId.ToString());

    public async Task<DatasetStaged> StageAsync(StageDataset command, CancellationToken cancellationToken = default)
    {
        var result = await RunAsync(command, cancellationToken);
        return result.Completed;
    }

    public Task<StageResult<DatasetStaged>> RunAsync(StageDataset command, CancellationToken cancellationToken = default)
    {
        var scratch = ScratchOf(command);
        Directory.CreateDirectory(scratch);
        var context = new StageContext(command, PipelineStage.Staging, ResolvedSpec.FromJson(command.Spec), command.OutputUri, scratch,
            NullLogger.Instance, (progress, _, _) =>
            {
                Progress.Enqueue(progress);
                return Task.CompletedTask;
            });
        return Runner().RunAsync(command, context, cancellationToken);
    }

    public Task<StageInputException> StageFailsAsync(StageDataset command) =>
        Assert.ThrowsAsync<StageInputException>(() => RunAsync(command));

    public async Task<List<JsonElement>> ManifestAsync(DatasetStaged staged)
    {
        var text = await ReadTextAsync(staged.ManifestUri);
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement.Clone())];
    }

    public async Task<JsonElement> JsonAsync(Uri uri) => JsonDocument.Parse(await ReadTextAsync(uri)).RootElement.Clone();

    public async Task<string> ReadTextAsync(Uri uri)
    {
        await using var stream = await Store.OpenReadAsync(uri, CancellationToken.None);
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync();
    }

    public async Task<List<Uri>> ListAsync(Uri prefix)
    {
        var uris = new List<Uri>();
        await foreach (var item in Store.ListAsync(prefix, CancellationToken.None))
        {
            uris.Add(item.Uri);
        }
        return uris;
    }

    /// <summary>Every file under the test's temp folder, relative to it.</summary>
    public HashSet<string> AllFiles() =>
        [.. Directory.EnumerateFiles(Temp.Path, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Temp.Path, f))];

    public void Dispose()
    {
        Store.Dispose();
        if (SourceStore != Store)
        {
            SourceStore.Dispose();
        }
        Temp.Dispose();
    }
}
