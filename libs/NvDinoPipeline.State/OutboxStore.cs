using Microsoft.EntityFrameworkCore;

namespace NvDinoPipeline.State;

/// <summary>
/// The outbox seen from its relays: which rows wait to be delivered, who is delivering them, which were delivered.
/// A relay locks the rows it delivers for a while; rows a relay locked and never marked delivered (it died, or lost
/// the broker) are taken by any relay once the lock runs out.
/// </summary>
public sealed class OutboxStore(StateDatabase database, TimeProvider clock)
{
    /// <summary>Saves messages that belong to no other change (a command-line client's request to the embedded host).</summary>
    public Task AddAsync(IReadOnlyList<OutboxMessage> messages, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async db =>
        {
            db.Outbox.AddRange(messages);
            return await db.SaveChangesAsync(cancellationToken);
        }, cancellationToken);

    /// <summary>Locks up to <paramref name="limit"/> undelivered rows no live relay holds, oldest first, for <paramref name="relayId"/>.</summary>
    public Task<List<OutboxMessage>> ClaimAsync(string relayId, TimeSpan lockFor, int limit, CancellationToken cancellationToken)
    {
        var now = Now;
        var until = now + lockFor;
        // Which rows this call locked: the database may store the time less precisely than it was given.
        var token = $"{relayId}#{Guid.NewGuid():N}";
        return database.InTransactionAsync(async db =>
        {
            var free = db.Outbox
                .Where(m => m.SentAt == null && (m.LockedUntil == null || m.LockedUntil < now))
                .OrderBy(m => m.Id).Take(limit).Select(m => m.Id);
            await db.Outbox.Where(m => free.Contains(m.Id) && m.SentAt == null && (m.LockedUntil == null || m.LockedUntil < now))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(m => m.LockedBy, token)
                    .SetProperty(m => m.LockedUntil, until)
                    .SetProperty(m => m.Attempts, m => m.Attempts + 1), cancellationToken);
            return await db.Outbox.AsNoTracking()
                .Where(m => m.SentAt == null && m.LockedBy == token)
                .OrderBy(m => m.Id).ToListAsync(cancellationToken);
        }, cancellationToken);
    }

    public Task MarkSentAsync(IReadOnlyCollection<long> ids, CancellationToken cancellationToken)
    {
        var now = Now;
        return database.ReadAsync(db => db.Outbox.Where(m => ids.Contains(m.Id))
            .ExecuteUpdateAsync(s => s
                .SetProperty(m => m.SentAt, now)
                .SetProperty(m => m.LockedBy, (string?)null)
                .SetProperty(m => m.LockedUntil, (DateTime?)null)
                .SetProperty(m => m.LastError, (string?)null), cancellationToken), cancellationToken);
    }

    /// <summary>Gives rows back to any relay, now or after <paramref name="retryAfter"/>, recording why they were not delivered.</summary>
    public Task ReleaseAsync(IReadOnlyCollection<long> ids, string relayId, string? error, TimeSpan retryAfter, CancellationToken cancellationToken)
    {
        DateTime? until = retryAfter > TimeSpan.Zero ? Now + retryAfter : null;
        return database.ReadAsync(db => db.Outbox.Where(m => ids.Contains(m.Id) && m.SentAt == null && m.LockedBy != null && m.LockedBy.StartsWith(relayId))
            .ExecuteUpdateAsync(s => s
                .SetProperty(m => m.LockedBy, (string?)null)
                .SetProperty(m => m.LockedUntil, until)
                .SetProperty(m => m.LastError, m => error ?? m.LastError), cancellationToken), cancellationToken);
    }

    /// <summary>Gives back every row <paramref name="relayId"/> still holds (the relay is stopping).</summary>
    public Task ReleaseAllAsync(string relayId, CancellationToken cancellationToken) =>
        database.ReadAsync(db => db.Outbox.Where(m => m.SentAt == null && m.LockedBy != null && m.LockedBy.StartsWith(relayId))
            .ExecuteUpdateAsync(s => s
                .SetProperty(m => m.LockedBy, (string?)null)
                .SetProperty(m => m.LockedUntil, (DateTime?)null), cancellationToken), cancellationToken);

    /// <summary>
    /// Makes undelivered again the rows delivered between <paramref name="since"/> and <paramref name="before"/> that
    /// <paramref name="consumer"/> has not recorded in its inbox, among those addressed to it (<paramref name="queue"/>) or
    /// of a type it consumes. For a transport that loses what it held when its process stops (in-memory): what a previous
    /// process delivered into it and was not handled is delivered again, with the same message id.
    /// </summary>
    public Task<int> RedeliverUnhandledAsync(string consumer, string queue, IReadOnlyCollection<string> consumedTypes, DateTime since,
        DateTime before, CancellationToken cancellationToken) =>
        database.ReadAsync(db => db.Outbox
            .Where(m => m.SentAt != null && m.SentAt > since && m.SentAt < before
                && (m.Destination == queue || (m.Destination == null && consumedTypes.Contains(m.MessageType)))
                && !db.Inbox.Any(i => i.MessageId == m.MessageId && i.Consumer == consumer))
            .ExecuteUpdateAsync(s => s
                .SetProperty(m => m.SentAt, (DateTime?)null)
                .SetProperty(m => m.LockedBy, (string?)null)
                .SetProperty(m => m.LockedUntil, (DateTime?)null), cancellationToken), cancellationToken);

    /// <summary>Deletes delivered outbox rows and inbox records older than <paramref name="before"/>.</summary>
    public Task<int> PurgeAsync(DateTime before, CancellationToken cancellationToken) =>
        database.ReadAsync(async db =>
            await db.Outbox.Where(m => m.SentAt != null && m.SentAt < before).ExecuteDeleteAsync(cancellationToken)
            + await db.Inbox.Where(m => m.HandledAt < before).ExecuteDeleteAsync(cancellationToken), cancellationToken);

    /// <summary>How many rows wait to be delivered, and since when the oldest has waited.</summary>
    public Task<(int Count, DateTime? Oldest)> BacklogAsync(CancellationToken cancellationToken) =>
        database.ReadAsync(async db =>
        {
            var waiting = db.Outbox.Where(m => m.SentAt == null);
            return (await waiting.CountAsync(cancellationToken), await waiting.MinAsync(m => (DateTime?)m.CreatedAt, cancellationToken));
        }, cancellationToken);

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
}
