using System.Collections.Immutable;

namespace NvDinoPipeline.Storage;

/// <summary>
/// Confines the writes of a running job to its own folder. The confinement holds for the asynchronous flow that
/// entered it and every task that flow starts, so whatever the job's code calls (its runner, the helpers it uses) writes
/// only there, through any <see cref="ArtifactStore"/>; reads stay limited by <see cref="ArtifactAccessPolicy"/>.
/// </summary>
public static class ArtifactConfinement
{
    private static readonly AsyncLocal<Scope?> Active = new();

    internal static Scope? Current => Active.Value;

    /// <summary>
    /// Until disposed, writes go only under <c>&lt;root&gt;/&lt;pipelineId&gt;/&lt;jobId&gt;/</c>. The job's output location as its
    /// command carries it must be exactly that folder: a command naming another one is refused.
    /// </summary>
    /// <exception cref="ArtifactAccessDeniedException"><paramref name="outputUri"/> is not the job's folder.</exception>
    public static IDisposable ConfineToJob(this IArtifactStore store, Guid pipelineId, Guid jobId, Uri outputUri)
    {
        ArgumentNullException.ThrowIfNull(store);
        var folder = store.JobFolder(pipelineId, jobId);
        if (outputUri is null || !outputUri.IsAbsoluteUri || outputUri.AbsoluteUri != folder.AbsoluteUri)
        {
            throw ArtifactAccessPolicy.Denied(outputUri,
                $"is not the folder of job {jobId} of pipeline {pipelineId} ({folder}); a job writes only under its own folder in the artifact root");
        }
        return Enter(new Scope(folder, []));
    }

    /// <summary>
    /// Lets the code inside also write exactly <paramref name="objectUri"/> (still under the artifact root) while
    /// confined: for a store-wide entry such as a cache record keyed by content, never for a location a spec or a
    /// message named.
    /// </summary>
    public static IDisposable Permit(Uri objectUri)
    {
        ArgumentNullException.ThrowIfNull(objectUri);
        return Active.Value is { } scope
            ? Enter(scope with { Permitted = scope.Permitted.Add(objectUri.AbsoluteUri) })
            : new Restore(null);
    }

    private static Restore Enter(Scope scope)
    {
        var previous = Active.Value;
        Active.Value = scope;
        return new Restore(previous);
    }

    internal sealed record Scope(Uri Folder, ImmutableHashSet<string> Permitted)
    {
        public bool Permits(Uri location) => Permitted.Contains(location.AbsoluteUri);
    }

    private sealed class Restore(Scope? previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            Active.Value = previous;
        }
    }
}
