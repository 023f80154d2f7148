using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Deploy.Tests.Faults;

public enum FaultKind
{
    KillOrchestrator,
    KillStaging,
    KillTraining,
    KillDistillation,
    KillExport,
    KillEngineGeneration,
    KillInference,
    RestartRabbitMq,
    RestartPostgres,
    StopS3,
}

public sealed record FaultCampaignOptions
{
    /// <summary>Where the campaign keeps its services' data, processes' scratch folders and logs.</summary>
    public required string Folder { get; init; }

    /// <summary>First of the ports the private services use (RabbitMQ from here, PostgreSQL +20, s3rver +30).</summary>
    public int PortBase { get; init; } = 17700;

    public int Pipelines { get; init; } = 20;

    /// <summary>Keys set on every pipeline's spec after <see cref="FaultCampaign.TinySpec"/> (an AutoML search, say).</summary>
    public IReadOnlyList<string> SpecOverrides { get; init; } = [];

    /// <summary>Time between two pipeline starts.</summary>
    public TimeSpan PipelineInterval { get; init; } = TimeSpan.FromSeconds(10);

    public IReadOnlyList<FaultKind> Faults { get; init; } = [.. Enum.GetValues<FaultKind>().SelectMany(k => Enumerable.Repeat(k, 3))];

    /// <summary>The quiet time between the end of one fault and the start of the next is drawn from [0, this].</summary>
    public TimeSpan FaultSpacing { get; init; } = TimeSpan.FromSeconds(15);

    public TimeSpan S3Outage { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>RabbitMQ's delivery acknowledgement timeout on the campaign's broker.</summary>
    public TimeSpan ConsumerTimeout { get; init; } = TimeSpan.FromDays(1);

    public TimeSpan Deadline { get; init; } = TimeSpan.FromMinutes(60);

    public int Seed { get; init; } = 1;

    public Action<string> Log { get; init; } = Console.WriteLine;
}

/// <summary>One fault as it was injected: when it began and ended, on what, and how long the pipelines it touched then stood still.</summary>
public sealed record InjectedFault(FaultKind Kind, DateTime Began, DateTime Ended, string Detail, bool MidJob)
{
    /// <summary>Seconds from the fault's end to the first change of the slowest pipeline it touched; null while unmeasured.</summary>
    public double? StallSeconds { get; set; }

    public int PipelinesTouched { get; set; }
}

public sealed record FaultCampaignReport(
    int Started,
    int Completed,
    IReadOnlyList<string> Failed,
    IReadOnlyList<string> Unfinished,
    IReadOnlyList<string> StagesCompletedTwice,
    int ArtifactsChecked,
    IReadOnlyList<string> CorruptArtifacts,
    IReadOnlyList<InjectedFault> Faults,
    IReadOnlyList<(DateTime At, double RssMiB)> OrchestratorMemory,
    TimeSpan Elapsed)
{
    public double LongestStallSeconds => Faults.Max(f => f.StallSeconds ?? 0);
}

/// <summary>
/// The product as a cluster runs it (every service its own process, on RabbitMQ, PostgreSQL and s3rver) with faults
/// injected at random moments while pipelines run: processes killed with SIGKILL mid-job, the broker and the database
/// restarted, the object store stopped for a while. Afterwards it counts what finished, what ran twice and what
/// artifact no longer matches its recorded sha256.
/// </summary>
public sealed partial class FaultCampaign(FaultCampaignOptions options)
{
    public static readonly string[] TinySpec =
    [
        "model.backbone.teacher_type=vit_pico",
        "model.backbone.student_type=vit_pico",
        "model.backbone.patch_size=14",
        "model.backbone.img_size=28",
        "model.head.num_prototypes=256",
        "model.head.hidden_dim=128",
        "model.head.bottleneck_dim=64",
        "dataset.batch_size=8",
        "dataset.transform.global_crops_size=28",
        "dataset.transform.local_crops_size=14",
        "dataset.transform.n_local_crops=2",
        "train.num_epochs=3",
        "train.checkpoint_interval=1",
        "train.optim.warmup_epochs=0",
        "train.teacher.warmup_teacher_temp_epochs=1",
        "train.optim.freeze_last_layer_epochs=0",
        "export.input_width=28",
        "export.input_height=28",
        "pipeline.stages.distill=true",
    ];

    private const int TrainImages = 48;
    private const int TestImageCount = 8;
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    private readonly Random _random = new(options.Seed);
    private readonly Dictionary<string, ServiceProcess> _processes = [];
    private readonly Dictionary<string, int> _incarnations = [];
    private readonly List<(DateTime, double)> _orchestratorMemory = [];
    private readonly string _bucket = $"faults{options.Seed}";
    private PrivateServices _services = null!;
    private Dictionary<string, string> _environment = null!;
    private IHost _client = null!;

    private string Logs => Path.Combine(options.Folder, "logs");

    public async Task<FaultCampaignReport> RunAsync()
    {
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(options.Folder);
        // One folder per port base, not per run: a run whose process died leaves its services there, and the next
        // run on those ports stops them before it starts its own.
        await using var services = _services = new PrivateServices(
            Path.Combine(Path.GetTempPath(), $"nvdino-faults-services-{options.PortBase}"), options.PortBase);
        StopLeftOverProcesses();
        options.Log("starting the private RabbitMQ, PostgreSQL and s3rver");
        await services.StartAsync(options.ConsumerTimeout);
        using (var s3 = S3Client())
        {
            await s3.PutBucketAsync(_bucket);
        }
        _environment = new Dictionary<string, string>
        {
            ["Messaging__Transport"] = "RabbitMq",
            ["Messaging__RabbitMq"] = services.RabbitMqUri,
            ["State__Provider"] = "Postgres",
            ["State__ConnectionString"] = services.PostgresConnectionString,
            ["State__JobLease"] = "00:00:08",
            ["ArtifactStore__Root"] = $"s3://{_bucket}/artifacts/",
            ["ArtifactStore__AllowedReadRoots__0"] = $"s3://{_bucket}/input/",
            ["ArtifactStore__S3__ServiceUrl"] = services.S3Url,
            ["ArtifactStore__S3__AccessKey"] = services.S3AccessKey,
            ["ArtifactStore__S3__SecretKey"] = services.S3SecretKey,
            ["ArtifactStore__S3__ForcePathStyle"] = "true",
            ["Orchestrator__RecoveryInterval"] = "00:00:02",
            ["Outbox__PollInterval"] = "00:00:00.500",
            ["Outbox__LockDuration"] = "00:00:10",
            ["Shutdown__Timeout"] = "00:00:20",
        };
        _client = TestHosts.Build(
            _environment.ToDictionary(pair => pair.Key.Replace("__", ":"), pair => (string?)pair.Value)
                .Concat([new("Workers:ScratchDirectory", Path.Combine(options.Folder, "client"))]).ToDictionary(),
            _ => { });
        await _client.StartAsync();
        try
        {
            await Task.WhenAll(DeployFiles.Services.Select(s => StartProcessAsync(s.Name)));
            var inputs = await UploadInputsAsync();
            options.Log($"{_processes.Count} processes ready; {options.Pipelines} pipelines start every {options.PipelineInterval.TotalSeconds:F0} s");

            using var done = new CancellationTokenSource();
            var memory = SampleOrchestratorMemoryAsync(done.Token);
            var starts = StartPipelinesAsync(inputs);
            var faults = await InjectFaultsAsync(starts);
            var started = await starts;
            var finished = await WaitFinishedAsync(started, options.Deadline - clock.Elapsed);
            await done.CancelAsync();
            await memory;

            var report = await AnalyseAsync(started, finished, faults, clock.Elapsed);
            return report;
        }
        finally
        {
            await Task.WhenAll(_processes.Values.Select(p => p.StopAsync(TimeSpan.FromSeconds(30))));
            foreach (var process in _processes.Values)
            {
                await process.DisposeAsync();
            }
            await _client.StopAsync();
            _client.Dispose();
        }
    }

    // s3rver understands neither chunked uploads nor flexible checksums (the product's store turns both off too).
    private AmazonS3Client S3Client() => new(_services.S3AccessKey, _services.S3SecretKey, new AmazonS3Config
    {
        ServiceURL = _services.S3Url,
        ForcePathStyle = true,
        RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
        ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
    });

    private async Task StartProcessAsync(string service)
    {
        var instance = _incarnations[service] = _incarnations.GetValueOrDefault(service) + 1;
        var process = ServiceProcess.Start(DeployFiles.Service(service), instance, _environment, options.Folder);
        _processes[service] = process;
        Directory.CreateDirectory(ProcessRecords);
        File.WriteAllText(Path.Combine(ProcessRecords, process.ProcessId.ToString()), process.Name);
        await process.WaitReadyAsync(TimeSpan.FromMinutes(3));
    }

    /// <summary>The pids of the service processes started on these ports, kept where the next run finds them.</summary>
    private string ProcessRecords => Path.Combine(Path.GetTempPath(), $"nvdino-faults-processes-{options.PortBase}");

    /// <summary>Kills the service processes an earlier run on these ports started and did not stop (it died first).</summary>
    private void StopLeftOverProcesses()
    {
        if (!Directory.Exists(ProcessRecords))
        {
            return;
        }
        foreach (var record in Directory.EnumerateFiles(ProcessRecords))
        {
            if (int.TryParse(Path.GetFileName(record), out var pid)
                && File.Exists($"/proc/{pid}/cmdline")
                && File.ReadAllText($"/proc/{pid}/cmdline").Contains("NvDinoPipeline.", StringComparison.Ordinal))
            {
                options.Log($"killing {File.ReadAllText(record)} (pid {pid}), left running by an earlier run");
                try
                {
                    using var process = Process.GetProcessById(pid);
                    process.Kill();
                    process.WaitForExit(TimeSpan.FromSeconds(10));
                }
                catch (ArgumentException)
                {
                    // Gone meanwhile.
                }
            }
            File.Delete(record);
        }
    }

    /// <summary>The users' data, put in the bucket beside the artifact root (a folder the pipelines may read, not write).</summary>
    private async Task<List<(Uri Train, Uri Test)>> UploadInputsAsync()
    {
        using var s3 = S3Client();
        var inputs = new List<(Uri, Uri)>();
        var folder = Directory.CreateDirectory(Path.Combine(options.Folder, "inputs")).FullName;
        for (var i = 0; i < options.Pipelines; i++)
        {
            var train = $"input/{i}/images_train.tar";
            var test = $"input/{i}/images_test.tar";
            await s3.PutObjectAsync(new PutObjectRequest
            {
                BucketName = _bucket, Key = train, UseChunkEncoding = false,
                FilePath = TestImages.WriteArchive(Path.Combine(folder, $"{i}-train.tar"), TrainImages, options.Seed * 1000 + i),
            });
            await s3.PutObjectAsync(new PutObjectRequest
            {
                BucketName = _bucket, Key = test, UseChunkEncoding = false,
                FilePath = TestImages.WriteArchive(Path.Combine(folder, $"{i}-test.tar"), TestImageCount, options.Seed * 1000 + 500 + i),
            });
            inputs.Add((new Uri($"s3://{_bucket}/{train}"), new Uri($"s3://{_bucket}/{test}")));
        }
        return inputs;
    }

    private async Task<List<Guid>> StartPipelinesAsync(List<(Uri Train, Uri Test)> inputs)
    {
        var spec = SpecLoader.CreateDefault().Resolve([], [.. TinySpec, .. options.SpecOverrides]).ToJson();
        var started = new List<Guid>();
        foreach (var (train, test) in inputs)
        {
            var start = new StartPipeline
            {
                PipelineId = NewId.NextGuid(),
                Name = $"fault-campaign-{started.Count}",
                TrainDataUri = train,
                TestDataUri = test,
                Spec = spec,
                RequestedAt = DateTimeOffset.UtcNow,
            };
            // A client retries until the broker confirms; the same pipeline id makes a repeated start harmless.
            while (true)
            {
                try
                {
                    var endpoint = await _client.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(Queues.Orchestrator));
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await endpoint.Send(start, timeout.Token);
                    break;
                }
                catch (Exception exception) when (exception is not OutOfMemoryException)
                {
                    await Task.Delay(TimeSpan.FromSeconds(1));
                }
            }
            started.Add(start.PipelineId);
            if (started.Count < inputs.Count)
            {
                await Task.Delay(options.PipelineInterval);
            }
        }
        return started;
    }

    private async Task<List<InjectedFault>> InjectFaultsAsync(Task starting)
    {
        var queue = new Queue<FaultKind>(options.Faults.OrderBy(_ => _random.Next()));
        var deferred = new Dictionary<FaultKind, int>();
        var injected = new List<InjectedFault>();
        var measuring = new List<Task>();
        await Task.Delay(options.PipelineInterval);
        while (queue.TryDequeue(out var kind))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(_random.NextDouble() * options.FaultSpacing.TotalMilliseconds));
            var before = await SnapshotAsync();
            var finished = await AllFinishedAsync(starting);
            var fault = await InjectAsync(kind, requireMidJob: deferred.GetValueOrDefault(kind) < 3 && !finished, waitForJob: !finished);
            if (fault is null)
            {
                // No job of that stage running now: try again later, when another pipeline reaches it.
                deferred[kind] = deferred.GetValueOrDefault(kind) + 1;
                queue.Enqueue(kind);
                continue;
            }
            injected.Add(fault);
            options.Log($"{fault.Began:HH:mm:ss} {fault.Kind} ({fault.Detail}), over at {fault.Ended:HH:mm:ss}");
            measuring.Add(MeasureStallAsync(fault, before));
        }
        await Task.WhenAll(measuring);
        return injected;
    }

    private async Task<bool> AllFinishedAsync(Task starting)
    {
        if (!starting.IsCompleted)
        {
            return false;
        }
        var snapshot = await SnapshotAsync();
        return snapshot.Values.All(p => p.Pipeline.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled);
    }

    private async Task<InjectedFault?> InjectAsync(FaultKind kind, bool requireMidJob, bool waitForJob)
    {
        switch (kind)
        {
            case FaultKind.KillOrchestrator:
                return await KillAsync("orchestrator", null, false, false);
            case FaultKind.RestartRabbitMq:
                return await OutageAsync(kind, "rabbitmq", TimeSpan.Zero);
            case FaultKind.RestartPostgres:
                return await OutageAsync(kind, "postgres", TimeSpan.Zero);
            case FaultKind.StopS3:
                return await OutageAsync(kind, "s3rver", options.S3Outage);
            default:
                var stage = Enum.Parse<PipelineStage>(kind.ToString()["Kill".Length..]);
                return await KillAsync(DeployFiles.Kebab(stage.ToString()), stage, requireMidJob, waitForJob);
        }
    }

    /// <summary>SIGKILL of a service's process, mid-job for a worker (when one of its jobs runs within a while), then a new process.</summary>
    private async Task<InjectedFault?> KillAsync(string service, PipelineStage? stage, bool requireMidJob, bool waitForJob)
    {
        var process = _processes[service];
        var detail = $"{process.Name}, pid {process.ProcessId}";
        var midJob = false;
        if (stage is { } running)
        {
            // Every pipeline finished: no job of the stage will come, so it is killed at once.
            var deadline = DateTime.UtcNow + (waitForJob ? TimeSpan.FromSeconds(60) : TimeSpan.Zero);
            while (DateTime.UtcNow < deadline)
            {
                var job = (await SnapshotAsync()).Values.SelectMany(p => p.Jobs).FirstOrDefault(j =>
                    j.Stage == running && j.Status == JobStatus.Running && j.WorkerId?.Split('/') is [_, var pid, _] && pid == process.ProcessId.ToString());
                if (job is not null)
                {
                    detail += $", mid-job {job.Step} of pipeline {job.PipelineId.ToString()[^12..]} at {job.Progress ?? 0:P0}";
                    midJob = true;
                    break;
                }
                await Task.Delay(Poll);
            }
            if (!midJob && requireMidJob)
            {
                return null;
            }
        }
        var began = DateTime.UtcNow;
        await process.KillAsync();
        await Task.Delay(TimeSpan.FromMilliseconds(1000 + _random.Next(3000)));
        await StartProcessAsync(service);
        return new InjectedFault(stage is null ? FaultKind.KillOrchestrator : Enum.Parse<FaultKind>("Kill" + stage), began, DateTime.UtcNow, detail, midJob);
    }

    private async Task<InjectedFault> OutageAsync(FaultKind kind, string service, TimeSpan outage)
    {
        var began = DateTime.UtcNow;
        await _services.StopAsync(service);
        await Task.Delay(outage);
        await _services.StartAsync(service);
        var detail = outage > TimeSpan.Zero ? $"{service} down {outage.TotalSeconds:F0} s" : $"{service} stopped and started";
        return new InjectedFault(kind, began, DateTime.UtcNow, detail, false);
    }

    /// <summary>
    /// How long the pipelines the fault touched stood still after it ended: those running at its start with a job
    /// running or finished during it; stood still until a row of theirs changed again (a progress report, a claim,
    /// a completion) or they finished.
    /// </summary>
    private async Task MeasureStallAsync(InjectedFault fault, Dictionary<Guid, (PipelineRecord Pipeline, List<JobRecord> Jobs)> before)
    {
        var touched = before.Values
            .Where(p => p.Pipeline.Status == JobStatus.Running && p.Jobs.Any(j => j.Status == JobStatus.Running))
            .Select(p => p.Pipeline.Id)
            .ToHashSet();
        var stalls = new Dictionary<Guid, double>();
        var deadline = fault.Ended + options.Deadline;
        while (touched.Count > stalls.Count && DateTime.UtcNow < deadline)
        {
            var now = await SnapshotAsync();
            foreach (var id in touched.Where(id => !stalls.ContainsKey(id)))
            {
                if (!now.TryGetValue(id, out var pipeline))
                {
                    continue;
                }
                if (pipeline.Pipeline.Status is not JobStatus.Running)
                {
                    // Finished (or failed) meanwhile: it stood still at most until then.
                    stalls[id] = Math.Max(0, (pipeline.Pipeline.UpdatedAt - fault.Ended).TotalSeconds);
                    continue;
                }
                var changed = pipeline.Jobs.Select(j => j.UpdatedAt).Append(pipeline.Pipeline.UpdatedAt).Where(t => t > fault.Ended).DefaultIfEmpty().Min();
                if (changed != default)
                {
                    stalls[id] = (changed - fault.Ended).TotalSeconds;
                }
            }
            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }
        fault.PipelinesTouched = touched.Count;
        fault.StallSeconds = touched.Count == 0 ? 0 : touched.Count > stalls.Count ? double.PositiveInfinity : stalls.Values.Max();
    }

    private async Task<Dictionary<Guid, (PipelineRecord Pipeline, List<JobRecord> Jobs)>> SnapshotAsync()
    {
        var store = _client.Services.GetRequiredService<PipelineStore>();
        while (true)
        {
            try
            {
                return (await store.ListAsync(1000, CancellationToken.None)).ToDictionary(p => p.Pipeline.Id);
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                // The database is being restarted: read again.
                await Task.Delay(TimeSpan.FromMilliseconds(500));
            }
        }
    }

    private async Task<Dictionary<Guid, (PipelineRecord Pipeline, List<JobRecord> Jobs)>> WaitFinishedAsync(List<Guid> started, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var snapshot = await SnapshotAsync();
            var finished = started.All(id => snapshot.TryGetValue(id, out var p) && p.Pipeline.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled);
            if (finished || DateTime.UtcNow > deadline)
            {
                return snapshot;
            }
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    private async Task SampleOrchestratorMemoryAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            if (_processes.TryGetValue("orchestrator", out var orchestrator) && !orchestrator.HasExited
                && File.Exists($"/proc/{orchestrator.ProcessId}/status"))
            {
                try
                {
                    var line = File.ReadLines($"/proc/{orchestrator.ProcessId}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
                    if (line is not null && long.TryParse(Regex.Match(line, @"\d+").Value, out var kib))
                    {
                        lock (_orchestratorMemory)
                        {
                            _orchestratorMemory.Add((DateTime.UtcNow, kib / 1024.0));
                        }
                    }
                }
                catch (IOException)
                {
                    // The process ended between the two reads.
                }
            }
            await Task.Delay(TimeSpan.FromSeconds(2), stop).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task<FaultCampaignReport> AnalyseAsync(List<Guid> started, Dictionary<Guid, (PipelineRecord Pipeline, List<JobRecord> Jobs)> snapshot,
        List<InjectedFault> faults, TimeSpan elapsed)
    {
        var pipelines = started.Select(id => snapshot[id]).ToList();
        var failed = pipelines.Where(p => p.Pipeline.Status is JobStatus.Error or JobStatus.Canceled)
            .Select(p => $"{p.Pipeline.Id}: {p.Pipeline.Status} in {p.Pipeline.FailedStage}: {p.Pipeline.ErrorReason}").ToList();
        var unfinished = pipelines.Where(p => p.Pipeline.Status is JobStatus.Running or JobStatus.Pending)
            .Select(p => $"{p.Pipeline.Id}: " + string.Join(", ", p.Jobs.OrderBy(j => j.CreatedAt).Select(j => $"{j.Step}#{j.Attempt}={j.Status}"))).ToList();

        // Twice: a step with two finished attempts, or a job whose run finished (the worker logged it done) more than once.
        var twice = pipelines.SelectMany(p => p.Jobs.Where(j => j.Status == JobStatus.Done).GroupBy(j => j.Step).Where(g => g.Count() > 1)
            .Select(g => $"{p.Pipeline.Id} {g.Key}: {g.Count()} attempts done")).ToList();
        var doneLines = Directory.EnumerateFiles(Logs, "*.json")
            .SelectMany(File.ReadLines)
            .Select(line => DoneJob().Match(line))
            .Where(match => match.Success)
            .GroupBy(match => match.Groups[1].Value)
            .Where(group => group.Count() > 1);
        twice.AddRange(doneLines.Select(group => $"job {group.Key}: finished {group.Count()} times"));

        var (checkedCount, corrupt) = await VerifyArtifactsAsync();
        List<(DateTime, double)> memory;
        lock (_orchestratorMemory)
        {
            memory = [.. _orchestratorMemory];
        }
        return new FaultCampaignReport(started.Count, pipelines.Count(p => p.Pipeline.Status == JobStatus.Done), failed, unfinished, twice,
            checkedCount, corrupt, faults, memory, elapsed);
    }

    /// <summary>Every object under the artifact root whose store recorded a sha256: read back and hashed.</summary>
    private async Task<(int Checked, List<string> Corrupt)> VerifyArtifactsAsync()
    {
        var store = _client.Services.GetRequiredService<IArtifactStore>();
        var corrupt = new List<string>();
        var count = 0;
        await foreach (var item in store.ListAsync(new Uri($"s3://{_bucket}/artifacts/"), CancellationToken.None))
        {
            var info = await store.GetInfoAsync(item.Uri, CancellationToken.None);
            if (info?.Sha256 is not { } recorded)
            {
                continue;
            }
            count++;
            try
            {
                await using var stream = await store.OpenReadAsync(item.Uri, CancellationToken.None);
                var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
                if (actual != recorded)
                {
                    corrupt.Add($"{item.Uri}: recorded {recorded}, content {actual}");
                }
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                // Unreadable counts as corrupt, named, instead of ending the campaign without its report.
                corrupt.Add($"{item.Uri}: {exception.GetType().Name}: {exception.Message}");
            }
        }
        return (count, corrupt);
    }

    [GeneratedRegex(@"""@mt"":""\{Stage\} job \{JobId\} done"".*?""JobId"":""([0-9a-f-]{36})""")]
    private static partial Regex DoneJob();
}
