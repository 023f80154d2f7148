using Npgsql;

namespace NvDinoPipeline.Testing;

/// <summary>
/// A PostgreSQL database of its own for one test class or collection, created empty on the test
/// server and dropped afterwards. Use as <c>IClassFixture&lt;PostgresFixture&gt;</c> or through a
/// collection definition in the test project.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    public string DatabaseName { get; private set; } = "";

    /// <summary>Npgsql connection string of this fixture's database.</summary>
    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var server = TestServices.PostgresConnectionString;
        DatabaseName = TestServices.UniqueName("nvdino_test", '_');
        await ExecuteOnServerAsync(server, $"CREATE DATABASE \"{DatabaseName}\"");
        ConnectionString = new NpgsqlConnectionStringBuilder(server) { Database = DatabaseName }.ConnectionString;
    }

    public async Task DisposeAsync()
    {
        if (ConnectionString.Length == 0)
        {
            return;
        }
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            NpgsqlConnection.ClearPool(connection);
        }
        // FORCE ends sessions the code under test may still hold (PostgreSQL 13+).
        await ExecuteOnServerAsync(TestServices.PostgresConnectionString, $"DROP DATABASE IF EXISTS \"{DatabaseName}\" WITH (FORCE)");
    }

    private static async Task ExecuteOnServerAsync(string connectionString, string sql)
    {
        // Pooling off: a pooled admin connection would keep the server's database busy after the run.
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false };
        try
        {
            await using var connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException e) when (e is not PostgresException)
        {
            throw new TestServiceUnavailableException(
                $"The PostgreSQL server at {builder.Host}:{builder.Port} ({TestServices.PostgresVariable}) does not answer: {e.Message}. " +
                TestServices.HowToStart("postgres"), e);
        }
    }
}
