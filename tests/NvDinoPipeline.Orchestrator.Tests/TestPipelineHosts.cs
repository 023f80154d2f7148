using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>Builds pipeline hosts the way the services do, on settings a test chooses.</summary>
public static class TestPipelineHosts
{
    /// <summary>
    /// <paramref name="settings"/> with a job lease no stall of a live worker outlasts. The 3-second lease of
    /// <see cref="EmbeddedSettings"/> lets the lease tests see a dead worker quickly, but on an oversubscribed machine a
    /// live worker can miss its renewals for that long and its job is then claimed again, as a dead worker's is. Tests
    /// that count each stage's runs under live workers take this one.
    /// </summary>
    public static Dictionary<string, string?> LiveWorkerSettings(Dictionary<string, string?> settings)
    {
        settings["State:JobLease"] = "00:00:30";
        return settings;
    }

    public static Dictionary<string, string?> EmbeddedSettings(string folder) => EmbeddedHosts.Settings(folder, new Dictionary<string, string?>
    {
        ["State:JobLease"] = "00:00:03",
        ["Orchestrator:RecoveryInterval"] = "00:00:01",
        ["Outbox:PollInterval"] = "00:00:00.050",
    });

    public static IHost Build(IDictionary<string, string?> settings, Action<PipelineHostBuilder> configure) => EmbeddedHosts.Build(settings, configure);

    public static async Task StartPipelineAsync(IHost host, StartPipeline start)
    {
        var endpoint = await host.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(Queues.Orchestrator));
        await endpoint.Send(start);
    }

    public static async Task SendAsync<T>(IHost host, T message) where T : class
    {
        var endpoint = await host.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(Queues.Orchestrator));
        await endpoint.Send(message);
    }

    public static StartPipeline NewStart(string spec, bool withTest = true) => new()
    {
        PipelineId = NewId.NextGuid(),
        TrainDataUri = new Uri("file:///data/images_train.tar.gz"),
        TestDataUri = withTest ? new Uri("file:///data/images_test.tar.gz") : null,
        Spec = spec,
        RequestedAt = DateTimeOffset.UtcNow,
    };

    public static async Task<(PipelineRecord Pipeline, List<JobRecord> Jobs)> ReadAsync(IHost host, Guid pipelineId)
    {
        var contexts = host.Services.GetRequiredService<IDbContextFactory<StateDbContext>>();
        await using var db = await contexts.CreateDbContextAsync();
        var pipeline = await db.Pipelines.AsNoTracking().SingleOrDefaultAsync(p => p.Id == pipelineId);
        var jobs = await db.Jobs.AsNoTracking().Where(j => j.PipelineId == pipelineId).ToListAsync();
        return (pipeline!, jobs);
    }

    /// <summary>The state database of <paramref name="settings"/>, read without a host.</summary>
    public static async Task<(PipelineRecord Pipeline, List<JobRecord> Jobs)> ReadAsync(IDictionary<string, string?> settings, Guid pipelineId)
    {
        await using var db = OpenState(settings);
        var pipeline = await db.Pipelines.AsNoTracking().SingleAsync(p => p.Id == pipelineId);
        var jobs = await db.Jobs.AsNoTracking().Where(j => j.PipelineId == pipelineId).ToListAsync();
        return (pipeline, jobs);
    }

    /// <summary>Sets a job's status and lease directly, as another process would have left them.</summary>
    public static async Task UpdateJobAsync(IDictionary<string, string?> settings, Guid jobId, JobStatus status, DateTime? leaseExpiresAt,
        string? workerId = null)
    {
        await using var db = OpenState(settings);
        await db.Jobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.Status, status)
            .SetProperty(j => j.LeaseExpiresAt, leaseExpiresAt)
            .SetProperty(j => j.WorkerId, j => workerId ?? j.WorkerId)
            .SetProperty(j => j.UpdatedAt, DateTime.UtcNow));
    }

    /// <summary>Overwrites one text column of a pipeline's record directly, as another process (or a hand) would.</summary>
    public static async Task UpdatePipelineAsync(IDictionary<string, string?> settings, Guid pipelineId, string column, string value)
    {
        await using var db = OpenState(settings);
        var pipeline = db.Pipelines.Where(p => p.Id == pipelineId);
        if (column == nameof(PipelineRecord.Spec))
            await pipeline.ExecuteUpdateAsync(s => s.SetProperty(p => p.Spec, value));
        else
            await pipeline.ExecuteUpdateAsync(s => s.SetProperty(p => p.Plan, value));
    }

    /// <summary>Ends a job in the state database as its worker's transaction would (Done with its completion, or Error).</summary>
    public static async Task EndJobInDatabaseAsync(IDictionary<string, string?> settings, Guid jobId, JobStatus status, object? completion, string reason)
    {
        await using var db = OpenState(settings);
        var now = DateTime.UtcNow;
        await db.Jobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.Status, status)
            .SetProperty(j => j.CompletionType, completion == null ? null : completion.GetType().FullName)
            .SetProperty(j => j.Completion, completion == null ? null : System.Text.Json.JsonSerializer.Serialize(completion, completion.GetType()))
            .SetProperty(j => j.ErrorReason, status == JobStatus.Error ? reason : null)
            .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
            .SetProperty(j => j.CompletedAt, now)
            .SetProperty(j => j.UpdatedAt, now)
            .SetProperty(j => j.Version, j => j.Version + 1));
    }

    private static StateDbContext OpenState(IDictionary<string, string?> settings) =>
        new(new DbContextOptionsBuilder<StateDbContext>().UseSqlite(settings["State:ConnectionString"]).Options);

    /// <summary>Waits until the pipeline (or one of its jobs) satisfies a condition; fails with the state seen last.</summary>
    public static async Task<(PipelineRecord Pipeline, List<JobRecord> Jobs)> WaitForAsync(IHost host, Guid pipelineId,
        Func<PipelineRecord, List<JobRecord>, bool> condition, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        (PipelineRecord Pipeline, List<JobRecord> Jobs) last = default;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await ReadAsync(host, pipelineId);
                if (last.Pipeline is not null && condition(last.Pipeline, last.Jobs))
                {
                    return last;
                }
            }
            catch (Exception exception) when (exception is DbUpdateException or InvalidOperationException or Microsoft.Data.Sqlite.SqliteException)
            {
            }
            await Task.Delay(50);
        }
        var seen = last.Pipeline is null
            ? "no pipeline record"
            : $"pipeline {last.Pipeline.Status} ({last.Pipeline.ErrorReason}); jobs: " +
              string.Join(", ", last.Jobs!.OrderBy(j => j.CreatedAt).Select(j => $"{j.Step}#{j.Attempt}={j.Status}{(j.ErrorReason is null ? "" : $"({j.ErrorReason})")}"));
        throw new TimeoutException($"Condition not reached in time: {seen}");
    }

    public static JobRecord Job(this List<JobRecord> jobs, string step, int attempt = 1) =>
        jobs.Single(j => j.Step == step && j.Attempt == attempt);
}
