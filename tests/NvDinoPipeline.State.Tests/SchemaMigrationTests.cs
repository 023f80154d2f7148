using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.State.Tests;

/// <summary>
/// A deployed state database survives an upgrade: one made by the previous release (its schema created by
/// <c>EnsureCreated</c>, before migrations existed) is brought to the newest schema with its pipelines, jobs and
/// waiting requests kept; a new one is created by the migrations, which match the model.
/// </summary>
public sealed class SchemaMigrationTests(PostgresFixture postgres) : IClassFixture<PostgresFixture>, IDisposable
{
    private static readonly Guid PipelineId = Guid.Parse("6f1b5a52-5d0e-4d7a-9b41-2f4a6c1d0e01");
    private static readonly Guid JobId = Guid.Parse("6f1b5a52-5d0e-4d7a-9b41-2f4a6c1d0e02");
    private static readonly Guid JsonPlanPipelineId = Guid.Parse("6f1b5a52-5d0e-4d7a-9b41-2f4a6c1d0e03");

    /// <summary>A distilling pipeline with test data, in the colon form the previous release stored plans in.</summary>
    private const string ColonPlan =
        "stage-train:Staging:;stage-test:Staging:;train:Training:stage-train;distill:Distillation:train;export:Export:distill;"
        + "engine:EngineGeneration:export;inference:Inference:engine,stage-test";

    private const string JsonPlan = """[{"name":"stage-train","stage":"Staging","depends_on":[]}]""";
    private readonly TempDirectory _folder = new("nvdino-state-migrations");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task A_sqlite_database_of_the_previous_release_is_upgraded_keeping_its_pipelines_jobs_and_waiting_requests()
    {
        var path = _folder.Combine("previous.db");
        await using (var connection = new SqliteConnection($"Data Source={path}"))
        {
            await connection.OpenAsync();
            await ExecuteAsync(connection, Fixture("sqlite"));
            await ExecuteAsync(connection, PreviousReleaseRows(sqlite: true));
        }

        await using var state = new StateServices(StateProvider.Sqlite, $"Data Source={path}");
        await state.Database.EnsureCreatedAsync(CancellationToken.None);

        await AssertUpgradedAsync(state);
    }

    [Fact]
    public async Task A_postgres_database_of_the_previous_release_is_upgraded_keeping_its_pipelines_jobs_and_waiting_requests()
    {
        await using (var connection = new NpgsqlConnection(postgres.ConnectionString))
        {
            await connection.OpenAsync();
            await ExecuteAsync(connection, Fixture("postgres"));
            await ExecuteAsync(connection, PreviousReleaseRows(sqlite: false));
        }

        await using var state = new StateServices(StateProvider.Postgres, postgres.ConnectionString);
        await state.Database.EnsureCreatedAsync(CancellationToken.None);

        await AssertUpgradedAsync(state);
    }

    [Theory]
    [InlineData(StateProvider.Sqlite)]
    [InlineData(StateProvider.Postgres)]
    public async Task A_new_database_gets_every_migration_and_the_migrations_match_the_model(StateProvider provider)
    {
        var connection = provider == StateProvider.Sqlite
            ? $"Data Source={_folder.Combine("new.db")}"
            : await NewPostgresDatabaseAsync();
        // Several processes starting at once on one new database.
        var processes = Enumerable.Range(0, 4).Select(_ => new StateServices(provider, connection)).ToList();
        try
        {
            await Task.WhenAll(processes.Select(p => p.Database.EnsureCreatedAsync(CancellationToken.None)));
            await using var migrating = StateDatabase.CreateMigrationContext(processes[0].Options);
            Assert.Empty(await migrating.Database.GetPendingMigrationsAsync());
            Assert.False(migrating.Database.HasPendingModelChanges(), "the model changed without a migration: add one with dotnet ef migrations add");
            Assert.Equal(migrating.Database.GetMigrations(), await migrating.Database.GetAppliedMigrationsAsync());
            await processes[0].Outbox.AddAsync([OutboxMessage.Publish(new CancelPipeline { PipelineId = PipelineId }, PipelineId, DateTime.UtcNow)], CancellationToken.None);
            Assert.Equal(1, (await processes[0].Outbox.BacklogAsync(CancellationToken.None)).Count);
        }
        finally
        {
            foreach (var process in processes)
            {
                await process.DisposeAsync();
            }
        }
    }

    private static async Task AssertUpgradedAsync(StateServices state)
    {
        await using var migrating = StateDatabase.CreateMigrationContext(state.Options);
        Assert.Equal(migrating.Database.GetMigrations(), await migrating.Database.GetAppliedMigrationsAsync());

        var (pipeline, jobs) = (await state.Pipelines.ReadAsync(PipelineId, CancellationToken.None))!.Value;
        Assert.Equal(("previous", JobStatus.Running), (pipeline.Name, pipeline.Status));
        // The plan is now the JSON any reader of the database parses, exactly as the orchestrator writes it.
        Assert.Equal(PipelineStep.Serialize(
        [
            new("stage-train", PipelineStage.Staging, []),
            new("stage-test", PipelineStage.Staging, []),
            new("train", PipelineStage.Training, ["stage-train"]),
            new("distill", PipelineStage.Distillation, ["train"]),
            new("export", PipelineStage.Export, ["distill"]),
            new("engine", PipelineStage.EngineGeneration, ["export"]),
            new("inference", PipelineStage.Inference, ["engine", "stage-test"]),
        ]), pipeline.Plan);
        var (alreadyJson, _) = (await state.Pipelines.ReadAsync(JsonPlanPipelineId, CancellationToken.None))!.Value;
        Assert.Equal(JsonPlan, alreadyJson.Plan);
        var job = Assert.Single(jobs);
        Assert.Equal((JobId, JobStatus.Pending, "stage-train"), (job.Id, job.Status, job.Step));

        // The request a command-line client left unread is now an outbox row on its way to the orchestrator; the one the host had read is not.
        var waiting = await state.Outbox.ClaimAsync("test-relay", TimeSpan.FromMinutes(1), 10, CancellationToken.None);
        var request = Assert.Single(waiting);
        Assert.Equal(("pipeline-orchestrator", typeof(ResumePipeline).FullName), (request.Destination, request.MessageType));
        Assert.Equal(PipelineId, System.Text.Json.JsonSerializer.Deserialize<ResumePipeline>(request.Body)!.PipelineId);
        Assert.NotEqual(Guid.Empty, request.MessageId);
    }

    private async Task<string> NewPostgresDatabaseAsync()
    {
        var name = TestServices.UniqueName("nvdino_migrate", '_');
        await using (var connection = new NpgsqlConnection(postgres.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(postgres.ConnectionString) { Database = name }.ConnectionString;
    }

    private static string Fixture(string provider) =>
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", $"schema-before-migrations.{provider}.sql"));

    /// <summary>
    /// Rows as the previous release wrote them: a plan in its colon form, a waiting job, a read and an unread request; and
    /// a pipeline whose plan is JSON already.
    /// </summary>
    private static string PreviousReleaseRows(bool sqlite)
    {
        string Id(Guid id) => sqlite ? $"'{id.ToString().ToUpperInvariant()}'" : $"'{id}'";
        var now = sqlite ? "'2026-11-30 10:00:00'" : "'2026-11-30 10:00:00+00'";
        var resume = System.Text.Json.JsonSerializer.Serialize(new ResumePipeline { PipelineId = PipelineId });
        var cancel = System.Text.Json.JsonSerializer.Serialize(new CancelPipeline { PipelineId = PipelineId });
        return $"""
            INSERT INTO pipelines ("Id", "Name", "Status", "Plan", "Spec", "TrainDataUri", "CreatedAt", "UpdatedAt", "Version")
                VALUES ({Id(PipelineId)}, 'previous', 'Running', '{ColonPlan}', '{"{}"}', 'file:///data/train.tar.gz', {now}, {now}, 1);
            INSERT INTO pipelines ("Id", "Name", "Status", "Plan", "Spec", "TrainDataUri", "CreatedAt", "UpdatedAt", "Version")
                VALUES ({Id(JsonPlanPipelineId)}, 'json', 'Done', '{JsonPlan}', '{"{}"}', 'file:///data/train.tar.gz', {now}, {now}, 1);
            INSERT INTO jobs ("Id", "PipelineId", "Step", "Stage", "Attempt", "Status", "Spec", "CommandType", "Command", "Artifacts", "Metrics",
                "Claims", "CreatedAt", "UpdatedAt", "Version")
                VALUES ({Id(JobId)}, {Id(PipelineId)}, 'stage-train', 'Staging', 1, 'Pending', '{"{}"}', 'NvDinoPipeline.Contracts.StageDataset', '{"{}"}',
                    '{"{}"}', '{"{}"}', 0, {now}, {now}, 0);
            INSERT INTO control_requests ("MessageType", "Message", "CreatedAt", "ProcessedAt")
                VALUES ('NvDinoPipeline.Contracts.CancelPipeline', '{cancel}', {now}, {now});
            INSERT INTO control_requests ("MessageType", "Message", "CreatedAt")
                VALUES ('NvDinoPipeline.Contracts.ResumePipeline', '{resume}', {now});
            """;
    }

    private static async Task ExecuteAsync(System.Data.Common.DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
