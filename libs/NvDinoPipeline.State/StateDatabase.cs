using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.Options;

namespace NvDinoPipeline.State;

/// <summary>
/// Brings the schema to the newest migration on first use (safe when several processes start at once), and runs
/// units of work in one transaction. A database created before migrations existed (by <c>EnsureCreated</c>, with
/// exactly the first migration's tables) is recorded as being at that migration and then upgraded.
/// </summary>
public sealed class StateDatabase(IDbContextFactory<StateDbContext> contexts, IOptions<StateOptions> options)
{
    public const string FirstMigration = "20261201000000_Initial";

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
            var settings = options.Value;
            if (settings.Provider == StateProvider.Sqlite)
            {
                CreateSqliteFolder(settings.ConnectionString);
            }
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await MigrateAsync(settings, cancellationToken);
                    break;
                }
                catch (Exception) when (attempt < 8 && !cancellationToken.IsCancellationRequested)
                {
                    // Another process may be migrating the same database right now, or the server is still starting.
                    await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), cancellationToken);
                }
            }
            _ready = true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> in one transaction on a fresh context, again from the start when the provider's
    /// execution strategy retries it after a transient fault (so the work must only read and write through the context).
    /// </summary>
    public async Task<T> InTransactionAsync<T>(Func<StateDbContext, Task<T>> work, CancellationToken cancellationToken)
    {
        await EnsureCreatedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Database.CreateExecutionStrategy().ExecuteAsync(async ct =>
        {
            db.ChangeTracker.Clear();
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var result = await work(db);
            await transaction.CommitAsync(ct);
            return result;
        }, cancellationToken);
    }

    /// <summary>Runs <paramref name="query"/> on a fresh context (no transaction beyond the statements' own).</summary>
    public async Task<T> ReadAsync<T>(Func<StateDbContext, Task<T>> query, CancellationToken cancellationToken)
    {
        await EnsureCreatedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Database.CreateExecutionStrategy().ExecuteAsync(_ => query(db), cancellationToken);
    }

    private static async Task MigrateAsync(StateOptions settings, CancellationToken cancellationToken)
    {
        await using var db = CreateMigrationContext(settings);
        await BaselineAsync(db, settings.Provider, cancellationToken);
        await db.Database.MigrateAsync(cancellationToken);
        if (settings.Provider == StateProvider.Sqlite)
        {
            // WAL lets the CLI read while a host writes.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }
    }

    /// <summary>The context whose migrations match <paramref name="settings"/>' provider.</summary>
    public static StateDbContext CreateMigrationContext(StateOptions settings)
    {
        switch (settings.Provider)
        {
            case StateProvider.Sqlite:
                var sqlite = new DbContextOptionsBuilder<SqliteStateDbContext>();
                StateServiceCollectionExtensions.Configure(sqlite, settings);
                return new SqliteStateDbContext(sqlite.Options);
            case StateProvider.Postgres:
                var postgres = new DbContextOptionsBuilder<PostgresStateDbContext>();
                StateServiceCollectionExtensions.Configure(postgres, settings);
                return new PostgresStateDbContext(postgres.Options);
            default:
                throw new InvalidOperationException($"State:Provider '{settings.Provider}' is not supported; use Sqlite or Postgres.");
        }
    }

    /// <summary>A database made by <c>EnsureCreated</c> has the first migration's tables but no history: record it as migrated.</summary>
    private static async Task BaselineAsync(StateDbContext db, StateProvider provider, CancellationToken cancellationToken)
    {
        var history = db.GetService<IHistoryRepository>();
        // Asked by name: Npgsql's IHistoryRepository.ExistsAsync answers true for a database without the table.
        if (await TableExistsAsync(db, provider, HistoryRepository.DefaultTableName, cancellationToken)
            || !await TableExistsAsync(db, provider, "pipelines", cancellationToken))
        {
            return;
        }
        await db.Database.ExecuteSqlRawAsync(history.GetCreateIfNotExistsScript(), cancellationToken);
        var version = typeof(DbContext).Assembly.GetName().Version?.ToString(3) ?? "10.0.0";
        await db.Database.ExecuteSqlRawAsync(history.GetInsertScript(new HistoryRow(FirstMigration, version)), cancellationToken);
    }

    private static async Task<bool> TableExistsAsync(StateDbContext db, StateProvider provider, string table, CancellationToken cancellationToken)
    {
        var sql = provider == StateProvider.Sqlite
            ? "SELECT count(*) AS \"Value\" FROM sqlite_master WHERE type = 'table' AND name = {0}"
            : "SELECT count(*)::int AS \"Value\" FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = {0}";
        var count = await db.Database.SqlQueryRaw<int>(sql, table).SingleAsync(cancellationToken);
        return count > 0;
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
