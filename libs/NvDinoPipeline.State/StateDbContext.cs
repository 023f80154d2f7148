using Microsoft.EntityFrameworkCore;

namespace NvDinoPipeline.State;

/// <summary>
/// The state database: pipelines, jobs, live workers, and the outbox and inbox that make every state change and
/// its messages one transaction. Its schema is created and upgraded by migrations (<see cref="StateDatabase"/>),
/// one set per provider (<see cref="SqliteStateDbContext"/>, <see cref="PostgresStateDbContext"/>).
/// </summary>
public class StateDbContext : DbContext
{
    public StateDbContext(DbContextOptions<StateDbContext> options)
        : base(options)
    {
    }

    protected StateDbContext(DbContextOptions options)
        : base(options)
    {
    }

    public DbSet<PipelineRecord> Pipelines => Set<PipelineRecord>();

    public DbSet<JobRecord> Jobs => Set<JobRecord>();

    public DbSet<WorkerRecord> Workers => Set<WorkerRecord>();

    public DbSet<OutboxMessage> Outbox => Set<OutboxMessage>();

    public DbSet<InboxMessage> Inbox => Set<InboxMessage>();

    public DbSet<JobLogRecord> JobLogs => Set<JobLogRecord>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<PipelineRecord>(pipeline =>
        {
            pipeline.ToTable("pipelines");
            pipeline.HasKey(p => p.Id);
            pipeline.Property(p => p.Status).HasConversion<string>().HasMaxLength(16);
            pipeline.Property(p => p.FailedStage).HasConversion<string>().HasMaxLength(32);
            pipeline.Property(p => p.ResultsQueue).HasMaxLength(128);
            pipeline.Property(p => p.ResultsContentType).HasMaxLength(64);
            pipeline.Property(p => p.TraceParent).HasMaxLength(64);
            pipeline.Property(p => p.Version).IsConcurrencyToken();
            pipeline.HasIndex(p => p.CreatedAt);
        });
        modelBuilder.Entity<JobRecord>(job =>
        {
            job.ToTable("jobs");
            job.HasKey(j => j.Id);
            job.Property(j => j.Status).HasConversion<string>().HasMaxLength(16);
            job.Property(j => j.Stage).HasConversion<string>().HasMaxLength(32);
            job.Property(j => j.Step).HasMaxLength(32);
            job.Property(j => j.Version).IsConcurrencyToken();
            job.HasIndex(j => new { j.PipelineId, j.Step, j.Attempt }).IsUnique();
            job.HasIndex(j => j.Status);
        });
        modelBuilder.Entity<WorkerRecord>(worker =>
        {
            worker.ToTable("workers");
            worker.HasKey(w => w.Id);
            worker.Property(w => w.Endpoint).HasMaxLength(256);
        });
        modelBuilder.Entity<JobLogRecord>(line =>
        {
            line.ToTable("job_logs");
            line.HasKey(l => l.Id);
            line.Property(l => l.Id).ValueGeneratedOnAdd();
            line.Property(l => l.Level).HasMaxLength(16);
            line.HasIndex(l => new { l.JobId, l.Id });
        });
        modelBuilder.Entity<OutboxMessage>(message =>
        {
            message.ToTable("outbox");
            message.HasKey(m => m.Id);
            message.Property(m => m.Destination).HasMaxLength(128);
            message.Property(m => m.ContentType).HasMaxLength(64);
            message.Property(m => m.MessageType).HasMaxLength(256);
            message.Property(m => m.LockedBy).HasMaxLength(128);
            message.HasIndex(m => m.MessageId);
            message.HasIndex(m => m.SentAt);
        });
        modelBuilder.Entity<InboxMessage>(message =>
        {
            message.ToTable("inbox");
            message.HasKey(m => new { m.MessageId, m.Consumer });
            message.Property(m => m.Consumer).HasMaxLength(128);
            message.HasIndex(m => m.HandledAt);
        });
    }
}

/// <summary>The state database on SQLite, as its migrations know it.</summary>
public sealed class SqliteStateDbContext(DbContextOptions<SqliteStateDbContext> options) : StateDbContext(options);

/// <summary>The state database on PostgreSQL, as its migrations know it.</summary>
public sealed class PostgresStateDbContext(DbContextOptions<PostgresStateDbContext> options) : StateDbContext(options);
