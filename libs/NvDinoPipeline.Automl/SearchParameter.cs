using System.Globalization;

namespace NvDinoPipeline.Automl;

/// <summary>How a searched parameter's values are laid out between its bounds.</summary>
public enum ParameterKind
{
    /// <summary>A real number, spread evenly between the bounds.</summary>
    Float,

    /// <summary>A positive real number spread evenly in its logarithm (learning rates, weight decays).</summary>
    LogFloat,

    /// <summary>An integer between the bounds, both included.</summary>
    Int,

    /// <summary>One of <see cref="SearchParameter.Choices"/>.</summary>
    Choice,
}

/// <summary>
/// One spec key the search varies, with its bounds (TAO API's <c>valid_min</c> / <c>valid_max</c>) or its choices
/// (<c>valid_options</c>). The searches work on the unit interval; <see cref="FromUnit"/> maps a point of it to a value
/// of the key, always within bounds.
/// </summary>
public sealed record SearchParameter
{
    public required string Key { get; init; }

    public required ParameterKind Kind { get; init; }

    public double Min { get; init; }

    public double Max { get; init; }

    public IReadOnlyList<string> Choices { get; init; } = [];

    public static SearchParameter Float(string key, double min, double max) => Checked(new() { Key = key, Kind = ParameterKind.Float, Min = min, Max = max });

    public static SearchParameter LogFloat(string key, double min, double max) => Checked(new() { Key = key, Kind = ParameterKind.LogFloat, Min = min, Max = max });

    public static SearchParameter Int(string key, int min, int max) => Checked(new() { Key = key, Kind = ParameterKind.Int, Min = min, Max = max });

    public static SearchParameter Choice(string key, params string[] choices) => Checked(new() { Key = key, Kind = ParameterKind.Choice, Choices = choices });

    /// <summary>The value at <paramref name="unit"/> (clamped to [0, 1]): a double for numbers, a string for choices.</summary>
    public object FromUnit(double unit)
    {
        var u = double.IsNaN(unit) ? 0.5 : Math.Clamp(unit, 0, 1);
        return Kind switch
        {
            ParameterKind.Float => Math.Clamp(Min + u * (Max - Min), Min, Max),
            ParameterKind.LogFloat => Math.Clamp(Math.Exp(Math.Log(Min) + u * (Math.Log(Max) - Math.Log(Min))), Min, Max),
            ParameterKind.Int => (double)Math.Clamp((long)Math.Floor(Min + u * (Max - Min + 1)), (long)Min, (long)Max),
            ParameterKind.Choice => Choices[Math.Min(Choices.Count - 1, (int)Math.Floor(u * Choices.Count))],
            _ => throw new InvalidOperationException($"unknown parameter kind {Kind}"),
        };
    }

    /// <summary>Where <paramref name="value"/> sits on the unit interval (the middle of its cell for integers and choices).</summary>
    public double ToUnit(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (Kind == ParameterKind.Choice)
        {
            var index = Choices.ToList().IndexOf(Convert.ToString(value, CultureInfo.InvariantCulture) ?? "");
            if (index < 0)
                throw new ArgumentException($"{Key}: '{value}' is not one of {string.Join(", ", Choices)}.", nameof(value));
            return (index + 0.5) / Choices.Count;
        }
        var number = Convert.ToDouble(value, CultureInfo.InvariantCulture);
        return Kind switch
        {
            ParameterKind.Float => Max == Min ? 0.5 : Math.Clamp((number - Min) / (Max - Min), 0, 1),
            ParameterKind.LogFloat => Max == Min ? 0.5 : Math.Clamp((Math.Log(number) - Math.Log(Min)) / (Math.Log(Max) - Math.Log(Min)), 0, 1),
            _ => Math.Clamp((Math.Round(number) - Min + 0.5) / (Max - Min + 1), 0, 1),
        };
    }

    /// <summary>The value as a spec override's text (<c>key=value</c>), in invariant culture.</summary>
    public string Format(object value) => value switch
    {
        string text => text,
        double number when Kind == ParameterKind.Int => ((long)number).ToString(CultureInfo.InvariantCulture),
        double number => number.ToString("R", CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    private static SearchParameter Checked(SearchParameter parameter)
    {
        if (string.IsNullOrWhiteSpace(parameter.Key))
            throw new ArgumentException("A searched parameter needs a spec key.");
        switch (parameter.Kind)
        {
            case ParameterKind.Choice when parameter.Choices.Count == 0:
                throw new ArgumentException($"{parameter.Key}: a choice needs at least one value.");
            case ParameterKind.Float or ParameterKind.Int or ParameterKind.LogFloat
                when double.IsNaN(parameter.Min) || double.IsNaN(parameter.Max) || parameter.Min > parameter.Max:
                throw new ArgumentException($"{parameter.Key}: min {parameter.Min} must not be above max {parameter.Max}.");
            case ParameterKind.LogFloat when parameter.Min <= 0:
                throw new ArgumentException($"{parameter.Key}: a log-scaled range needs a positive min, got {parameter.Min}.");
        }
        return parameter;
    }
}

/// <summary>The parameters a search varies; keys the user fixed are left out (<see cref="Without"/>).</summary>
public sealed class SearchSpace
{
    public SearchSpace(IEnumerable<SearchParameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = [.. parameters];
        var repeated = Parameters.GroupBy(p => p.Key, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null)
            throw new ArgumentException($"{repeated.Key} is searched twice.", nameof(parameters));
    }

    public IReadOnlyList<SearchParameter> Parameters { get; }

    public int Dimension => Parameters.Count;

    /// <summary>
    /// Every spec key a search can vary, with the bounds it is searched within (TAO API's <c>valid_min</c> and
    /// <c>valid_max</c> of the train schema's AutoML parameters, narrowed where DINOv2's recipe is unstable beyond them).
    /// </summary>
    public static IReadOnlyList<SearchParameter> Searchable { get; } =
    [
        SearchParameter.LogFloat("train.optim.lr", 1e-4, 2e-2),
        SearchParameter.Float("train.optim.weight_decay_end", 0.04, 0.4),
        SearchParameter.Float("train.teacher.teacher_temp", 0.04, 0.07),
        SearchParameter.Float("model.backbone.drop_path_rate", 0.0, 0.4),
        SearchParameter.Float("train.optim.layerwise_decay", 0.65, 1.0),
        SearchParameter.Float("train.optim.weight_decay", 0.0, 0.2),
        SearchParameter.Int("train.optim.warmup_epochs", 0, 20),
        SearchParameter.Float("train.teacher.warmup_teacher_temp", 0.02, 0.06),
        SearchParameter.Float("train.teacher.momentum_teacher", 0.98, 0.999),
        SearchParameter.Float("train.loss.koleo_loss_weight", 0.0, 0.2),
        SearchParameter.Float("train.loss.ibot_loss_weight", 0.0, 2.0),
        SearchParameter.Float("train.loss.mask_sample_probability", 0.0, 1.0),
    ];

    /// <summary>
    /// What NVDINOv2 training searches when the spec names no parameters: the learning rate, the weight decay's final
    /// value, the teacher temperature, the stochastic-depth rate and the layer-wise decay, within bounds that keep
    /// DINOv2's recipe stable.
    /// </summary>
    public static SearchSpace TrainingDefaults { get; } = new(Searchable.Take(5));

    /// <summary>The space of <paramref name="keys"/> (each one of <see cref="Searchable"/>); none names <see cref="TrainingDefaults"/>.</summary>
    /// <exception cref="ArgumentException">A key that cannot be searched, named with the ones that can.</exception>
    public static SearchSpace Of(IReadOnlyCollection<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0)
            return TrainingDefaults;
        var unknown = keys.Where(key => Searchable.All(p => p.Key != key)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"{string.Join(", ", unknown)} cannot be searched; the searchable keys are {string.Join(", ", Searchable.Select(p => p.Key))}.",
                nameof(keys));
        return new SearchSpace(Searchable.Where(p => keys.Contains(p.Key)));
    }

    /// <summary>This space without the keys in <paramref name="fixedKeys"/>: a value the user set is kept, never searched.</summary>
    public SearchSpace Without(IEnumerable<string> fixedKeys)
    {
        var keys = fixedKeys.ToHashSet(StringComparer.Ordinal);
        return new SearchSpace(Parameters.Where(p => !keys.Contains(p.Key)));
    }

    /// <summary>A configuration: each key's value at the matching coordinate of <paramref name="unit"/>.</summary>
    public IReadOnlyDictionary<string, object> At(IReadOnlyList<double> unit)
    {
        ArgumentNullException.ThrowIfNull(unit);
        if (unit.Count != Dimension)
            throw new ArgumentException($"{unit.Count} coordinates for {Dimension} parameters.", nameof(unit));
        return Parameters.Select((p, i) => (p.Key, Value: p.FromUnit(unit[i]))).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
    }

    /// <summary>Where <paramref name="configuration"/> sits in the unit cube.</summary>
    public double[] UnitOf(IReadOnlyDictionary<string, object> configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return [.. Parameters.Select(p => configuration.TryGetValue(p.Key, out var value)
            ? p.ToUnit(value)
            : throw new ArgumentException($"The configuration has no value for {p.Key}.", nameof(configuration)))];
    }

    /// <summary>A point drawn uniformly from the unit cube.</summary>
    public double[] RandomUnit(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        return [.. Parameters.Select(_ => random.NextDouble())];
    }

    /// <summary>The configuration as <c>key=value</c> overrides, in the order of the parameters.</summary>
    public IReadOnlyList<string> Overrides(IReadOnlyDictionary<string, object> configuration) =>
        [.. Parameters.Select(p => $"{p.Key}={p.Format(configuration[p.Key])}")];
}
