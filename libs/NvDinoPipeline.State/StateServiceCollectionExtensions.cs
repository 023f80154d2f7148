using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
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
        services.AddSingleton<JobStore>();
        services.AddSingleton<StateDatabase>();
        return services;
    }

    public static void Configure(DbContextOptionsBuilder db, StateOptions options)
    {
        switch (options.Provider)
        {
            case StateProvider.Sqlite:
                var sqlite = new SqliteConnectionStringBuilder(options.ConnectionString);
                if (sqlite.DefaultTimeout < 30)
                {
                    // Several processes (CLI, hosts) share the file; wait for a lock instead of failing.
                    sqlite.DefaultTimeout = 30;
                }
                db.UseSqlite(sqlite.ConnectionString);
                break;
            case StateProvider.Postgres:
                db.UseNpgsql(options.ConnectionString);
                break;
            default:
                throw new InvalidOperationException($"State:Provider '{options.Provider}' is not supported; use Sqlite or Postgres.");
        }
    }
}
