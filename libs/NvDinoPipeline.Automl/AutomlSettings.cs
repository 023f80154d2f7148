using System.Globalization;
using NvDinoPipeline.Specs;

namespace NvDinoPipeline.Automl;

public enum AutomlAlgorithm
{
    Bayesian,
    Hyperband,
}

/// <summary>What ranks the trials (<c>automl.metric</c>).</summary>
public enum AutomlMetric
{
    /// <summary>k-NN on a held-out split when the images carry class folders, else the training loss.</summary>
    Auto,

    /// <summary>Weighted k-NN top-1 on the held-out split: higher is better.</summary>
    Knn,

    /// <summary>The last epoch's training loss (TAO's monitoring metric): lower is better.</summary>
    Loss,
}

/// <summary>
/// The <c>automl_policy</c> key and the <c>automl</c> section of a resolved spec (TAO API's <c>automl_settings</c>).
/// </summary>
public sealed record AutomlSettings
{
    public const string PolicyKey = "automl_policy";
    public const string HyperparametersKey = "automl.automl_hyperparameters";

    public required bool Enabled { get; init; }

    public required AutomlAlgorithm Algorithm { get; init; }

    public required int MaxRecommendations { get; init; }

    public required int R { get; init; }

    public required int Nu { get; init; }

    public required int EpochMultiplier { get; init; }

    public required int MaxConcurrentTrials { get; init; }

    /// <summary>The keys searched, as the spec names them (empty: <see cref="SearchSpace.TrainingDefaults"/>).</summary>
    public required IReadOnlyList<string> Hyperparameters { get; init; }

    public required AutomlMetric Metric { get; init; }

    public required double HeldOutFraction { get; init; }

    public required bool DeleteIntermediateCheckpoints { get; init; }

    /// <summary><c>train.seed</c> (0 when it is unfixed): the search draws its configurations from it.</summary>
    public required int Seed { get; init; }

    /// <summary><c>train.num_epochs</c>: what each Bayesian trial trains.</summary>
    public required int Epochs { get; init; }

    public SearchSpace Space => SearchSpace.Of(Hyperparameters);

    public static AutomlSettings From(ResolvedSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var seed = spec.Get<long>("train.seed");
        return new AutomlSettings
        {
            Enabled = spec.Get<string>(PolicyKey) == "auto",
            Algorithm = spec.Get<string>("automl.automl_algorithm") == "hyperband" ? AutomlAlgorithm.Hyperband : AutomlAlgorithm.Bayesian,
            MaxRecommendations = spec.Get<int>("automl.automl_max_recommendations"),
            R = spec.Get<int>("automl.automl_r"),
            Nu = spec.Get<int>("automl.automl_nu"),
            EpochMultiplier = spec.Get<int>("automl.epoch_multiplier"),
            MaxConcurrentTrials = spec.Get<int>("automl.max_concurrent_trials"),
            Hyperparameters = spec.Get<IReadOnlyList<string>>(HyperparametersKey),
            Metric = Enum.Parse<AutomlMetric>(spec.Get<string>("automl.metric"), ignoreCase: true),
            HeldOutFraction = spec.Get<double>("automl.held_out_fraction"),
            DeleteIntermediateCheckpoints = spec.Get<bool>("automl.automl_delete_intermediate_ckpt"),
            Seed = seed < 0 ? 0 : (int)(seed % int.MaxValue),
            Epochs = spec.Get<int>("train.num_epochs"),
        };
    }

    /// <summary>
    /// The keys a search with <paramref name="spec"/> varies: those <c>automl.automl_hyperparameters</c> names, else
    /// <see cref="SearchSpace.TrainingDefaults"/>' less <paramref name="fixedKeys"/> (those the request chose), which
    /// keep their values. As an override that records them in the spec, so that what the pipeline stores says what
    /// was searched; null when AutoML is off.
    /// </summary>
    /// <exception cref="ArgumentException">A key that cannot be searched, or nothing left to search; the message names the key.</exception>
    public static string? SearchedKeysOverride(ResolvedSpec spec, IReadOnlySet<string> fixedKeys)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(fixedKeys);
        var settings = From(spec);
        if (!settings.Enabled)
            return null;
        SearchSpace space;
        try
        {
            space = settings.Space;
        }
        catch (ArgumentException exception)
        {
            throw new ArgumentException($"{HyperparametersKey}: {exception.Message}", exception);
        }
        // Keys the spec names are searched as named; of the default ones, those the request chose are kept as chosen.
        var searched = (settings.Hyperparameters.Count > 0 ? space : space.Without(fixedKeys)).Parameters.Select(p => p.Key).ToList();
        if (searched.Count == 0)
            throw new ArgumentException(
                $"{HyperparametersKey}: {PolicyKey} is auto, but the request sets every key the search would vary by default ({string.Join(", ", space.Parameters.Select(p => p.Key))}), " +
                $"and those keep the values it chose; name the keys to search in {HyperparametersKey}, or set {PolicyKey}: off.");
        return $"{HyperparametersKey}=[{string.Join(",", searched)}]";
    }

    /// <summary>The epochs of a Hyperband trial given <paramref name="resource"/> units.</summary>
    public int EpochsFor(double resource) => Math.Max(1, (int)Math.Round(resource * EpochMultiplier, MidpointRounding.AwayFromZero));

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Algorithm} over {string.Join(", ", Space.Parameters.Select(p => p.Key))}");
}
