namespace NvDinoPipeline.Hosting.Workers;

/// <summary>
/// The job's input is wrong (bad archive, corrupt checkpoint, impossible spec). Its message is shown
/// to the user as the job's failure reason, so it names the input and what is wrong with it.
/// </summary>
public sealed class StageInputException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A fault worth retrying (an unreachable broker or store); the job goes back to the queue.</summary>
public sealed class TransientStageException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>What cannot run on this host (no GPU, no TensorRT); the message says what was looked for.</summary>
public sealed class StageUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

public static class StageFailures
{
    /// <summary>
    /// Faults that pass by themselves: an unreachable broker, store or state database, also when a stage wrapped
    /// them in an error of its own. What the stage judged the input's fault or the host's never is, unless the
    /// input could not be read because the store was away.
    /// </summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        // A read the stage blamed on its input while the store itself was away: the input may be fine.
        StageInputException { InnerException: Storage.ArtifactStoreException { Transient: true } } => true,
        StageInputException or StageUnavailableException => false,
        TransientStageException or TimeoutException or HttpRequestException or HttpIOException or System.Net.Sockets.SocketException => true,
        Storage.ArtifactStoreException store => store.Transient,
        AggregateException aggregate => aggregate.InnerExceptions.Count > 0 && aggregate.InnerExceptions.All(IsTransient),
        _ => State.StateFailures.IsTransient(exception) || exception.InnerException is { } inner && IsTransient(inner),
    };

    /// <summary>The failure reason recorded on the job and published with <c>StageFailed</c>.</summary>
    public static string Describe(Exception exception) => exception switch
    {
        StageInputException or StageUnavailableException => exception.Message,
        AggregateException { InnerExceptions.Count: 1 } aggregate => Describe(aggregate.InnerExceptions[0]),
        _ => $"{exception.GetType().Name}: {exception.Message}",
    };
}
