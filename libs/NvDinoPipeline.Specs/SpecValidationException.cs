namespace NvDinoPipeline.Specs;

/// <summary>A spec failed to load or validate; <see cref="Errors"/> holds every problem found, not only the first.</summary>
public sealed class SpecValidationException : Exception
{
    public SpecValidationException(IReadOnlyList<SpecError> errors)
        : base(Describe(errors))
    {
        Errors = errors;
    }

    public IReadOnlyList<SpecError> Errors { get; }

    private static string Describe(IReadOnlyList<SpecError> errors) =>
        errors.Count == 1
            ? $"Invalid spec: {errors[0]}"
            : $"Invalid spec ({errors.Count} errors):{Environment.NewLine}"
              + string.Join(Environment.NewLine, errors.Select(error => $"  - {error}"));
}
