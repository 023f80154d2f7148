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

    /// <summary>
    /// SQLite: how long a statement waits for another process's write lock before it fails (and is retried as a
    /// transient fault). Several processes (the command-line client, hosts) share one file.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a worker's claim on a job lasts without a heartbeat.</summary>
    [Range(typeof(TimeSpan), "00:00:02", "01:00:00")]
    public TimeSpan JobLease { get; set; } = TimeSpan.FromSeconds(30);
}
