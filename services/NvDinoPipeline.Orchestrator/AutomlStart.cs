using NvDinoPipeline.Automl;
using NvDinoPipeline.Specs;

namespace NvDinoPipeline.Orchestrator;

/// <summary>What a start (or a <c>train</c> action) with <c>automl_policy: auto</c> settles before any stage runs.</summary>
internal static class AutomlStart
{
    /// <summary>
    /// Records in <paramref name="spec"/> the keys the search varies (<see cref="AutomlSettings.SearchedKeysOverride"/>:
    /// those of <c>automl.automl_hyperparameters</c> whose value the request left at the template's), so that the
    /// stored spec says what was searched; returns what makes the search impossible, naming the key.
    /// </summary>
    public static string? Problem(SpecLoader specs, ref ResolvedSpec spec)
    {
        try
        {
            if (AutomlSettings.SearchedKeysOverride(spec, specs.KeysChangedFromTemplates(spec)) is { } searched)
            {
                spec = specs.Apply(spec, [searched]);
            }
            return null;
        }
        catch (ArgumentException exception)
        {
            return "The spec is not valid: " + exception.Message;
        }
        catch (SpecValidationException exception)
        {
            return "The spec is not valid: " + string.Join("; ", exception.Errors);
        }
    }
}
