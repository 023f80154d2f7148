using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace NvDinoPipeline.State;

/// <summary>Creates the schema on first use; safe when several processes start at once.</summary>
public sealed class StateDatabase(IDbContextFactory<StateDbContext> contexts, IOptions<StateOptions> options)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private bool _ready;

    public async Task EnsureCreatedAsync(CancellationToken cancellationToken)
    {
        if (_ready)
        {
            return;
        }
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_ready)
            {
                return;
            }
            if (options.Value.Provider == StateProvider.Sqlite)
            {
                CreateSqliteFolder(options.Value.ConnectionString);
            }
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await using var db = await contexts.CreateDbContextAsync(cancellationToken);
                    await db.Database.EnsureCreatedAsync(cancellationToken);
                    if (options.Value.Provider == StateProvider.Sqlite)
                    {
                        // WAL lets the CLI read while a host writes.
                        await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
                    }
                    await db.Pipelines.AnyAsync(cancellationToken);
                    break;
                }
                catch (Exception) when (attempt < 5 && !cancellationToken.IsCancellationRequested)
                {
                    // Another process may be creating the same schema right now.
                    await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellationToken);
                }
            }
            _ready = true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private static void CreateSqliteFolder(string connectionString)
    {
        var dataSource = new SqliteConnectionStringBuilder(connectionString).DataSource;
        if (string.IsNullOrEmpty(dataSource) || dataSource == ":memory:")
        {
            return;
        }
        var folder = Path.GetDirectoryName(Path.GetFullPath(dataSource));
        if (!string.IsNullOrEmpty(folder))
        {
            Directory.CreateDirectory(folder);
        }
    }
}
