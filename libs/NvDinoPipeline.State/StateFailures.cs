using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace NvDinoPipeline.State;

/// <summary>Which state-database errors pass by themselves: a server restarting, a connection lost, a lock held a while.</summary>
public static class StateFailures
{
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;

    public static bool IsTransient(Exception exception) => exception switch
    {
        SqliteException sqlite => sqlite.SqliteErrorCode is SqliteBusy or SqliteLocked,
        NpgsqlException npgsql => npgsql.IsTransient || npgsql is PostgresException { SqlState: "57P01" or "57P02" or "57P03" or "53300" },
        RetryLimitExceededException => true,
        DbUpdateConcurrencyException => false,
        DbUpdateException { InnerException: { } inner } => IsTransient(inner),
        DbException { IsTransient: true } => true,
        TimeoutException => true,
        InvalidOperationException { InnerException: { } inner } => IsTransient(inner),
        AggregateException aggregate => aggregate.InnerExceptions.Count > 0 && aggregate.InnerExceptions.All(IsTransient),
        _ => false,
    };
}
