using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace NvDinoPipeline.State;

public static class StateServiceCollectionExtensions
{
    public static IServiceCollection AddPipelineState(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StateOptions>()
            .Bind(configuration.GetSection(StateOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddDbContextFactory<StateDbContext>((provider, db) =>
            Configure(db, provider.GetRequiredService<IOptions<StateOptions>>().Value));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<StateDatabase>();
        services.AddSingleton<JobStore>();
        services.AddSingleton<PipelineStore>();
        services.AddSingleton<OutboxStore>();
        services.AddSingleton<WorkerStore>();
        services.AddSingleton<JobLogStore>();
        return services;
    }

    public static void Configure(DbContextOptionsBuilder db, StateOptions options)
    {
        // A refused write is how two hosts settle a race (a unique index, a stale version) and the stores handle it;
        // EF Core would log each at error level before the store sees it. What is not handled reaches the caller as an
        // exception and is logged there, with the job or pipeline it concerns.
        db.ConfigureWarnings(warnings => warnings.Log(
            (RelationalEventId.CommandError, LogLevel.Debug),
            (CoreEventId.SaveChangesFailed, LogLevel.Debug),
            (CoreEventId.OptimisticConcurrencyException, LogLevel.Debug)));
        switch (options.Provider)
        {
            case StateProvider.Sqlite:
                // Several processes (CLI, hosts) share the file; wait for a lock instead of failing.
                var sqlite = new SqliteConnectionStringBuilder(options.ConnectionString)
                {
                    DefaultTimeout = Math.Max(1, (int)Math.Ceiling(options.BusyTimeout.TotalSeconds)),
                };
                db.UseSqlite(sqlite.ConnectionString);
                break;
            case StateProvider.Postgres:
                // A restarted or failed-over server drops connections: the statement is tried again on a new one.
                db.UseNpgsql(options.ConnectionString, npgsql => npgsql.EnableRetryOnFailure(
                    maxRetryCount: 8, maxRetryDelay: TimeSpan.FromSeconds(10), errorCodesToAdd: null));
                break;
            default:
                throw new InvalidOperationException($"State:Provider '{options.Provider}' is not supported; use Sqlite or Postgres.");
        }
    }
}
