using Microsoft.EntityFrameworkCore;

namespace NvDinoPipeline.State;

public sealed class StateDbContext(DbContextOptions<StateDbContext> options) : DbContext(options)
{
    public DbSet<PipelineRecord> Pipelines => Set<PipelineRecord>();

    public DbSet<JobRecord> Jobs => Set<JobRecord>();

    public DbSet<WorkerRecord> Workers => Set<WorkerRecord>();

    public DbSet<ControlRequest> ControlRequests => Set<ControlRequest>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<PipelineRecord>(pipeline =>
        {
            pipeline.ToTable("pipelines");
            pipeline.HasKey(p => p.Id);
            pipeline.Property(p => p.Status).HasConversion<string>().HasMaxLength(16);
            pipeline.Property(p => p.FailedStage).HasConversion<string>().HasMaxLength(32);
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
        });
        modelBuilder.Entity<ControlRequest>(request =>
        {
            request.ToTable("control_requests");
            request.HasKey(r => r.Id);
            request.HasIndex(r => r.ProcessedAt);
        });
    }
}
