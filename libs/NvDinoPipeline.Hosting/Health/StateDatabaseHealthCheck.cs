using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Hosting.Health;

/// <summary>Ready only while the state database answers a query: every job is claimed and completed through it.</summary>
public sealed class StateDatabaseHealthCheck(IDbContextFactory<StateDbContext> contexts, IOptions<StateOptions> options) : IHealthCheck
{
    public const string Name = "state-database";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var provider = options.Value.Provider;
        try
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            await db.Database.ExecuteSqlRawAsync("SELECT 1", cancellationToken);
            return HealthCheckResult.Healthy($"{provider} state database answers");
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The exception (logged by the endpoint) stays out of the description: readiness answers anyone who asks.
            return new HealthCheckResult(context.Registration.FailureStatus, $"{provider} state database does not answer", exception);
        }
    }
}
