using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.State.Tests;

/// <summary>A refused write is how two hosts settle a race; the stores handle it, so the data layer must not log it as an error.</summary>
public sealed class StateLoggingTests
{
    [Fact]
    public async Task A_write_the_database_refuses_reaches_the_caller_without_an_error_in_the_log()
    {
        using var folder = new TempDirectory("nvdino-state-logging");
        var logs = new Captured();
        await using var state = StateServices.Sqlite(folder, logs: logs);
        await state.Database.EnsureCreatedAsync(CancellationToken.None);
        var id = Guid.NewGuid();
        await using (var db = state.Open())
        {
            db.Jobs.Add(Job(id));
            await db.SaveChangesAsync();
        }

        await using (var db = state.Open())
        {
            db.Jobs.Add(Job(id));
            await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync());
        }

        Assert.Contains(logs.Entries, e => e.EventId == RelationalEventId.CommandError.Id && e.Level == LogLevel.Debug);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    private static JobRecord Job(Guid id) => new()
    {
        Id = id,
        PipelineId = Guid.NewGuid(),
        Step = "train",
        Stage = PipelineStage.Training,
        Spec = "{}",
        CommandType = "TrainModel",
        Command = "{}",
    };

    private sealed class Captured : ILoggerProvider
    {
        public ConcurrentQueue<(string Category, int EventId, LogLevel Level)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, Entries);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<(string, int, LogLevel)> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue((category, eventId.Id, logLevel));
        }
    }
}
