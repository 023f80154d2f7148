namespace NvDinoPipeline.Storage;

/// <summary>
/// The store refused a location before touching it: outside the roots it may read or the folder it may write, or
/// written in a form that could reach elsewhere. The message names the location (credentials removed) and the rule,
/// never anything read from storage. An <see cref="ArgumentException"/>: the caller passed a location it may not use.
/// </summary>
public sealed class ArtifactAccessDeniedException(string location, string rule) : ArgumentException($"'{location}' {rule}")
{
    /// <summary>The refused location as given, with any user name and password replaced by <c>***</c>.</summary>
    public string Location { get; } = location;

    /// <summary>What the location breaks, e.g. "is outside the locations this deployment reads (…)".</summary>
    public string Rule { get; } = rule;
}
