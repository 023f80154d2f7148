using System.Text.Json;
using Amazon.S3;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;
using Xunit.Abstractions;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>
/// The cluster as the images run it, without containers: every service as its own process
/// (<c>dotnet &lt;Service&gt;.dll</c> from the build output, configured by environment variables only) on a
/// real RabbitMQ, an S3-compatible server and PostgreSQL. One pipeline runs through every stage; then a
/// second staging and a second inference process join and two more pipelines share them.
/// </summary>
public sealed class ClusterScaleTests(RabbitMqFixture broker, PostgresFixture database, S3Fixture s3, ITestOutputHelper output)
    : IClassFixture<RabbitMqFixture>, IClassFixture<PostgresFixture>, IClassFixture<S3Fixture>, IAsyncLifetime
{
    private const int TrainImages = 32;
    private const int TestImageCount = 8;

    /// <summary>A model and schedule small enough for a shared CI machine (the demo's, one epoch).</summary>
    private static readonly string[] TinySpec =
    [
        "model.backbone.teacher_type=vit_pico",
        "model.backbone.student_type=vit_pico",
        "model.backbone.patch_size=14",
        "model.backbone.img_size=28",
        "model.head.num_prototypes=256",
        "model.head.hidden_dim=128",
        "model.head.bottleneck_dim=64",
        "dataset.batch_size=16",
        "dataset.transform.global_crops_size=28",
        "dataset.transform.local_crops_size=14",
        "dataset.transform.n_local_crops=2",
        "train.num_epochs=1",
        "train.checkpoint_interval=1",
        "train.optim.warmup_epochs=0",
        "train.teacher.warmup_teacher_temp_epochs=1",
        "train.optim.freeze_last_layer_epochs=0",
        "export.input_width=28",
        "export.input_height=28",
    ];

    private readonly TempDirectory _folder = new("nvdino-scale");
    private readonly List<ServiceProcess> _processes = [];
    private readonly string _bucket = S3Fixture.NewBucketName();
    private Dictionary<string, string> _environment = null!;
    private IHost _client = null!;

    public async Task InitializeAsync()
    {
        using (var client = S3Client())
        {
            await client.PutBucketAsync(_bucket);
        }
        // Exactly what a container is given (docker-compose.yml, deploy/k8s/config.yaml), pointed at the test services.
        _environment = new Dictionary<string, string>
        {
            ["Messaging__Transport"] = "RabbitMq",
            ["Messaging__RabbitMq"] = broker.Uri.ToString(),
            ["State__Provider"] = "Postgres",
            ["State__ConnectionString"] = database.ConnectionString,
            ["ArtifactStore__Root"] = $"s3://{_bucket}/artifacts/",
            ["ArtifactStore__S3__ServiceUrl"] = s3.Endpoint.ServiceUrl.ToString(),
            ["ArtifactStore__S3__AccessKey"] = s3.Endpoint.AccessKey,
            ["ArtifactStore__S3__SecretKey"] = s3.Endpoint.SecretKey,
            ["ArtifactStore__S3__ForcePathStyle"] = "true",
            ["Shutdown__Timeout"] = "00:00:20",
            ["Workers__ConcurrentJobs__Staging"] = "1",
            ["Workers__ConcurrentJobs__Inference"] = "1",
        };
        // The test's own view of the cluster: a host with no worker, to send commands and read state.
        _client = TestHosts.Build(
            _environment.ToDictionary(pair => pair.Key.Replace("__", ":"), pair => (string?)pair.Value)
                .Concat([new("Workers:ScratchDirectory", _folder.Combine("client"))]).ToDictionary(),
            _ => { });
        await _client.StartAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var process in _processes)
        {
            await process.DisposeAsync();
        }
        await _client.StopAsync();
        _client.Dispose();
        _folder.Dispose();
        using var client = S3Client();
        for (var page = await client.ListObjectsV2Async(new() { BucketName = _bucket });
             page.S3Objects is { Count: > 0 };
             page = await client.ListObjectsV2Async(new() { BucketName = _bucket }))
        {
            foreach (var item in page.S3Objects)
            {
                await client.DeleteObjectAsync(_bucket, item.Key);
            }
        }
        await client.DeleteBucketAsync(_bucket);
    }

    private AmazonS3Client S3Client() => new(s3.Endpoint.AccessKey, s3.Endpoint.SecretKey,
        new AmazonS3Config { ServiceURL = s3.Endpoint.ServiceUrl.ToString(), ForcePathStyle = true });

    private async Task<List<ServiceProcess>> StartAsync(params (string Service, int Instance)[] services)
    {
        var started = services
            .Select(s => ServiceProcess.Start(DeployFiles.Service(s.Service), s.Instance, _environment, _folder.Path))
            .ToList();
        _processes.AddRange(started);
        await Task.WhenAll(started.Select(p => p.WaitReadyAsync(TimeSpan.FromMinutes(2))));
        return started;
    }

    private async Task<StartPipeline> StartPipelineAsync(string name, int seed)
    {
        var store = _client.Services.GetRequiredService<IArtifactStore>();
        var train = new Uri($"s3://{_bucket}/artifacts/input/{name}/images_train.tar");
        var test = new Uri($"s3://{_bucket}/artifacts/input/{name}/images_test.tar");
        await store.PutFileAsync(train, TestImages.WriteArchive(_folder.Combine($"{name}-train.tar"), TrainImages, seed), CancellationToken.None);
        await store.PutFileAsync(test, TestImages.WriteArchive(_folder.Combine($"{name}-test.tar"), TestImageCount, seed + 100), CancellationToken.None);
        var start = new StartPipeline
        {
            PipelineId = NewId.NextGuid(),
            Name = name,
            TrainDataUri = train,
            TestDataUri = test,
            Spec = SpecLoader.CreateDefault().Resolve([], TinySpec).ToJson(),
            RequestedAt = DateTimeOffset.UtcNow,
        };
        var endpoint = await _client.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(Queues.Orchestrator));
        await endpoint.Send(start);
        return start;
    }

    private async Task<(PipelineRecord Pipeline, List<JobRecord> Jobs)> WaitDoneAsync(Guid pipelineId, TimeSpan timeout)
    {
        var contexts = _client.Services.GetRequiredService<IDbContextFactory<StateDbContext>>();
        async Task<(PipelineRecord? Pipeline, List<JobRecord> Jobs)> ReadAsync()
        {
            await using var db = await contexts.CreateDbContextAsync();
            return (await db.Pipelines.AsNoTracking().SingleOrDefaultAsync(p => p.Id == pipelineId),
                await db.Jobs.AsNoTracking().Where(j => j.PipelineId == pipelineId).ToListAsync());
        }
        try
        {
            var (pipeline, jobs) = await TestHosts.WaitForAsync(ReadAsync,
                state => state.Pipeline?.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled, timeout, $"pipeline {pipelineId} finished");
            Assert.True(pipeline!.Status == JobStatus.Done, $"pipeline {pipeline.Status}: {pipeline.FailedStage} {pipeline.ErrorReason}");
            return (pipeline, jobs);
        }
        catch (Exception)
        {
            foreach (var process in _processes)
            {
                output.WriteLine($"==== {process.Name} (pid {process.ProcessId}{(process.HasExited ? ", exited" : "")})\n{process.Output}");
            }
            throw;
        }
    }

    private ServiceProcess RanOn(JobRecord job) =>
        _processes.SingleOrDefault(p => job.WorkerId?.Split('/') is [_, var pid, _] && pid == p.ProcessId.ToString())
        ?? throw new Xunit.Sdk.XunitException($"{job.Step} was done by {job.WorkerId}, which is none of the started processes.");

    [Fact]
    public async Task Every_service_in_its_own_process_runs_a_pipeline_then_two_staging_and_two_inference_processes_share_the_next_pipelines_running_each_job_once()
    {
        var stages = DeployFiles.Services
            .Where(s => s.Stage is not PipelineStage.Distillation && s.Name is not "staging" and not "inference")
            .Select(s => (s.Name, 1))
            .ToArray();
        await StartAsync([.. stages, ("staging", 1), ("inference", 1)]);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var first = await StartPipelineAsync("first", seed: 1);
        var (_, firstJobs) = await WaitDoneAsync(first.PipelineId, TimeSpan.FromMinutes(5));
        Assert.Equal(["engine", "evaluate", "export", "inference", "stage-test", "stage-train", "train"], firstJobs.Select(j => j.Step).Order());

        output.WriteLine($"processes ready and the first pipeline done in {clock.Elapsed.TotalSeconds:F0} s");
        clock.Restart();
        var joined = await StartAsync(("staging", 2), ("inference", 2));
        var second = await StartPipelineAsync("second", seed: 2);
        var third = await StartPipelineAsync("third", seed: 3);
        var (_, secondJobs) = await WaitDoneAsync(second.PipelineId, TimeSpan.FromMinutes(5));
        var (_, thirdJobs) = await WaitDoneAsync(third.PipelineId, TimeSpan.FromMinutes(5));

        output.WriteLine($"two more processes ready and two more pipelines done in {clock.Elapsed.TotalSeconds:F0} s");

        // Nothing lost, nothing run twice: every job done at its first attempt, claimed once, by a live worker.
        var allJobs = firstJobs.Concat(secondJobs).Concat(thirdJobs).ToList();
        Assert.All(allJobs, job =>
        {
            Assert.Equal(JobStatus.Done, job.Status);
            Assert.Equal(1, job.Attempt);
            Assert.True(job.Claims == 1, $"{job.Step} of pipeline {job.PipelineId} was claimed {job.Claims} times.");
        });
        Assert.All(allJobs.Where(j => j.Step == "inference"), job =>
            Assert.Equal(TestImageCount, JsonSerializer.Deserialize<InferenceCompleted>(job.Completion!)!.EmbeddedCount));
        Assert.All(allJobs, job => Assert.StartsWith(DeployFiles.Kebab(job.Stage.ToString()) + "-", RanOn(job).Name));
        foreach (var job in allJobs.OrderBy(j => j.StartedAt))
        {
            output.WriteLine($"{job.PipelineId.ToString()[^8..]} {job.Step,-12} on {RanOn(job).Name,-20} {(job.CompletedAt - job.StartedAt)?.TotalSeconds,6:F1} s");
        }

        // Shared: both staging processes staged datasets of the later pipelines, and each inference process ran one of their two inference jobs.
        var later = secondJobs.Concat(thirdJobs).ToList();
        var stagingBy = later.Where(j => j.Stage == PipelineStage.Staging).Select(j => RanOn(j).Name).Distinct().Order();
        Assert.Equal(["staging-1", "staging-2"], stagingBy);
        var inferenceBy = later.Where(j => j.Stage == PipelineStage.Inference).Select(j => RanOn(j).Name).Order();
        Assert.Equal(["inference-1", "inference-2"], inferenceBy);
        Assert.Contains(joined, p => p.Name == "staging-2");

        // SIGTERM, as docker stop and Kubernetes send it: every process ends within its shutdown timeout.
        var stopped = await Task.WhenAll(_processes.Select(p => p.StopAsync(TimeSpan.FromSeconds(30))));
        Assert.All(stopped, Assert.True);
    }
}
