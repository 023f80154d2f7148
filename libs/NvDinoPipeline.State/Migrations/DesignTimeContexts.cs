using Microsoft.EntityFrameworkCore.Design;

namespace NvDinoPipeline.State.Migrations;

/// <summary>
/// What <c>dotnet ef migrations add</c> builds the contexts with (no database is opened):
/// <c>dotnet ef migrations add Name --project libs/NvDinoPipeline.State --context SqliteStateDbContext -o Migrations/Sqlite</c>,
/// and the same with <c>PostgresStateDbContext</c> and <c>Migrations/Postgres</c>.
/// </summary>
public sealed class SqliteDesignTimeContext : IDesignTimeDbContextFactory<SqliteStateDbContext>
{
    public SqliteStateDbContext CreateDbContext(string[] args) =>
        (SqliteStateDbContext)StateDatabase.CreateMigrationContext(new StateOptions { Provider = StateProvider.Sqlite, ConnectionString = "Data Source=design.db" });
}

public sealed class PostgresDesignTimeContext : IDesignTimeDbContextFactory<PostgresStateDbContext>
{
    public PostgresStateDbContext CreateDbContext(string[] args) =>
        (PostgresStateDbContext)StateDatabase.CreateMigrationContext(new StateOptions { Provider = StateProvider.Postgres, ConnectionString = "Host=localhost;Database=design" });
}
