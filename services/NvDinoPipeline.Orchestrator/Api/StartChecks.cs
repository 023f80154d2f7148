using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Orchestrator.Api;

/// <summary>What a client checks before it sends a start, so that bad input is refused before anything runs.</summary>
public static class StartChecks
{
    /// <summary>
    /// The inputs of a start that lie where this deployment does not read — its data and every location its spec names —
    /// each with the reason. Names relative to a job's folder are the workers' to check; every worker checks again.
    /// </summary>
    public static IReadOnlyList<(string Input, string Reason)> Unreadable(ArtifactAccessPolicy access, SpecLoader specs, ResolvedSpec spec,
        params (string Input, Uri? Location)[] data)
    {
        var problems = new List<(string, string)>();
        void Check(string input, Uri location)
        {
            try
            {
                access.EnsureReadable(location);
            }
            catch (ArtifactAccessDeniedException exception)
            {
                problems.Add((input, exception.Message));
            }
        }

        foreach (var (input, location) in data)
        {
            if (location is not null)
            {
                Check(input, location);
            }
        }
        foreach (var (key, value) in specs.InputLocations(spec))
        {
            if (ArtifactUriExtensions.TryParseLocation(value, out var location))
            {
                Check(key, location);
            }
        }
        return problems;
    }
}
