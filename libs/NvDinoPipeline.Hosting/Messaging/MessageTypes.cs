using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.Hosting.Messaging;

/// <summary>The message types a stored message (an outbox row, a job's command) is read back as, by full name.</summary>
public static class MessageTypes
{
    private static readonly Dictionary<string, Type> ByName = typeof(IStageMessage).Assembly.GetExportedTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } && t.Namespace == typeof(IStageMessage).Namespace)
        .ToDictionary(t => t.FullName!, StringComparer.Ordinal);

    /// <exception cref="InvalidOperationException">No contract has that name.</exception>
    public static Type Resolve(string fullName) => ByName.TryGetValue(fullName, out var type)
        ? type
        : throw new InvalidOperationException($"'{fullName}' is not a message type of NvDinoPipeline.Contracts.");
}
