using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.State;

public enum StateProvider
{
    Sqlite,
    Postgres,
}

public sealed class StateOptions
{
    public const string SectionName = "State";

    public StateProvider Provider { get; set; } = StateProvider.Sqlite;

    /// <summary>SQLite: <c>Data Source=/path/state.db</c>; PostgreSQL: an Npgsql connection string.</summary>
    [Required(AllowEmptyStrings = false)]
    public string ConnectionString { get; set; } = "";

    /// <summary>How long a worker's claim on a job lasts without a heartbeat.</summary>
    [Range(typeof(TimeSpan), "00:00:02", "01:00:00")]
    public TimeSpan JobLease { get; set; } = TimeSpan.FromSeconds(30);
}
