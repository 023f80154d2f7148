using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.State.Tests;

/// <summary>State services over a database of the test's choosing, built the way every process builds them.</summary>
public sealed class StateServices : IAsyncDisposable
{
    private readonly ServiceProvider _provider;

    public StateServices(StateProvider provider, string connectionString, TimeSpan? busyTimeout = null, ILoggerProvider? logs = null)
    {
        Options = new StateOptions { Provider = provider, ConnectionString = connectionString };
        var settings = new Dictionary<string, string?>
        {
            ["State:Provider"] = provider.ToString(),
            ["State:ConnectionString"] = connectionString,
        };
        if (busyTimeout is { } timeout)
        {
            settings["State:BusyTimeout"] = timeout.ToString();
        }
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        if (logs is not null)
        {
            services.AddLogging(logging => logging.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        }
        _provider = services.AddPipelineState(configuration).BuildServiceProvider();
    }

    public StateOptions Options { get; }

    public StateDatabase Database => _provider.GetRequiredService<StateDatabase>();

    public JobStore Jobs => _provider.GetRequiredService<JobStore>();

    public PipelineStore Pipelines => _provider.GetRequiredService<PipelineStore>();

    public OutboxStore Outbox => _provider.GetRequiredService<OutboxStore>();

    /// <summary>A context straight on the database, for what a test sets up or checks beneath the stores.</summary>
    public StateDbContext Open() => _provider.GetRequiredService<IDbContextFactory<StateDbContext>>().CreateDbContext();

    public static StateServices Sqlite(TempDirectory folder, string name = "state.db", TimeSpan? busyTimeout = null, ILoggerProvider? logs = null) =>
        new(StateProvider.Sqlite, $"Data Source={folder.Combine(name)}", busyTimeout, logs);

    public ValueTask DisposeAsync() => _provider.DisposeAsync();
}
