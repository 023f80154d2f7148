namespace NvDinoPipeline.Automl;

/// <summary>One round of successive halving: how many trials run, to how many resource units, and how many go on.</summary>
public sealed record Rung(int Trials, double Resource, int Promoted);

/// <summary>One bracket of Hyperband: a number of fresh trials halved rung by rung (<c>s</c> is its halvings).</summary>
public sealed record Bracket(int S, IReadOnlyList<Rung> Rungs);

/// <summary>
/// Hyperband's schedule (Li et al., 2018, algorithm 1): with <c>R</c> the most resource a trial may get and <c>nu</c>
/// (η) the halving rate, bracket <c>s</c> (from <c>s_max = ⌊log_η R⌋</c> down to 0) starts
/// <c>n = ⌈(s_max + 1) / (s + 1) · η^s⌉</c> trials at <c>r = R · η^-s</c>; rung <c>i</c> runs <c>⌊n η^-i⌋</c> of them to
/// <c>r η^i</c> and promotes the best <c>⌊n η^-(i+1)⌋</c>, the others stop. TAO API names the two <c>automl_R</c> and
/// <c>automl_nu</c>; one resource unit is <c>epoch_multiplier</c> epochs.
/// </summary>
public static class HyperbandSchedule
{
    public static IReadOnlyList<Bracket> Brackets(int r, int nu)
    {
        if (r < 1)
            throw new ArgumentOutOfRangeException(nameof(r), r, "automl_R must be at least 1.");
        if (nu < 2)
            throw new ArgumentOutOfRangeException(nameof(nu), nu, "automl_nu must be at least 2.");
        var sMax = FloorLog(r, nu);
        var brackets = new List<Bracket>();
        for (var s = sMax; s >= 0; s--)
        {
            var n = (int)Math.Ceiling((sMax + 1) / (double)(s + 1) * Math.Pow(nu, s));
            var resource = r * Math.Pow(nu, -s);
            var rungs = new List<Rung>();
            for (var i = 0; i <= s; i++)
            {
                var trials = (int)Math.Floor(n * Math.Pow(nu, -i) + 1e-9);
                var promoted = i == s ? 0 : (int)Math.Floor(n * Math.Pow(nu, -(i + 1)) + 1e-9);
                rungs.Add(new Rung(trials, resource * Math.Pow(nu, i), promoted));
            }
            brackets.Add(new Bracket(s, rungs));
        }
        return brackets;
    }

    /// <summary>⌊log_nu r⌋ in integers, so that 27 at 3 is 3, not 2.9999.</summary>
    private static int FloorLog(int r, int nu)
    {
        var s = 0;
        for (long power = nu; power <= r; power *= nu)
            s++;
        return s;
    }
}

/// <summary>What a search asks the training stage for next: a fresh trial, or an existing one continued from its checkpoint.</summary>
public sealed record TrialRequest(int TrialId, IReadOnlyDictionary<string, object> Configuration, double Resource, bool Resume);

/// <summary>
/// Hyperband as a state machine the orchestrator drives: <see cref="Next"/> says which trials to run (fresh ones at a
/// bracket's first rung, promoted ones resumed from their checkpoints with more resource); <see cref="Report"/> takes each
/// trial's score (higher is better). When every trial of a rung has reported, the best go on and the rest stop early.
/// Configurations are drawn by <paramref name="propose"/> (uniform over the space, as in the paper, unless given).
/// </summary>
public sealed class HyperbandSearch
{
    private readonly IReadOnlyList<Bracket> brackets;
    private readonly Func<IReadOnlyDictionary<string, object>> propose;
    private readonly Dictionary<int, IReadOnlyDictionary<string, object>> configurations = [];
    private readonly Dictionary<int, double> scores = [];
    private readonly List<int> stopped = [];
    private List<int> rungTrials = [];
    private int bracket;
    private int rung;
    private int nextId = 1;
    private bool issued;

    public HyperbandSearch(SearchSpace space, int r, int nu, Random random, Func<IReadOnlyDictionary<string, object>>? propose = null)
    {
        ArgumentNullException.ThrowIfNull(space);
        ArgumentNullException.ThrowIfNull(random);
        brackets = HyperbandSchedule.Brackets(r, nu);
        this.propose = propose ?? (() => space.At(space.RandomUnit(random)));
    }

    public IReadOnlyList<Bracket> Schedule => brackets;

    public bool Finished => bracket >= brackets.Count;

    /// <summary>The bracket (from 0, the one with the most halvings) and rung the trials of <see cref="Next"/> belong to.</summary>
    public int CurrentBracket => bracket;

    public int CurrentRung => rung;

    /// <summary>Trials stopped early: not promoted past a rung.</summary>
    public IReadOnlyList<int> Stopped => stopped;

    public IReadOnlyDictionary<int, IReadOnlyDictionary<string, object>> Configurations => configurations;

    /// <summary>Each trial's latest score.</summary>
    public IReadOnlyDictionary<int, double> Scores => scores;

    /// <summary>
    /// The trials to run now: the current rung's, once. Empty while some of them have not reported, and when the
    /// search is finished.
    /// </summary>
    public IReadOnlyList<TrialRequest> Next()
    {
        if (Finished || issued)
            return [];
        var current = brackets[bracket].Rungs[rung];
        if (rung == 0)
        {
            rungTrials = [.. Enumerable.Range(0, current.Trials).Select(_ =>
            {
                var id = nextId++;
                configurations[id] = propose();
                return id;
            })];
        }
        issued = true;
        foreach (var id in rungTrials)
            scores.Remove(id);
        return [.. rungTrials.Select(id => new TrialRequest(id, configurations[id], current.Resource, Resume: rung > 0))];
    }

    /// <summary>Records a trial's score at the current rung; when the rung is complete, promotes its best and moves on.</summary>
    public void Report(int trialId, double score)
    {
        if (!rungTrials.Contains(trialId) || !issued)
            throw new InvalidOperationException($"Trial {trialId} is not running in the current rung.");
        scores[trialId] = double.IsNaN(score) ? double.NegativeInfinity : score;
        if (rungTrials.Any(id => !scores.ContainsKey(id)))
            return;
        var current = brackets[bracket].Rungs[rung];
        // Ties keep the older trial: the order is the score, then the id.
        var ranked = rungTrials.OrderByDescending(id => scores[id]).ThenBy(id => id).ToList();
        issued = false;
        if (rung + 1 < brackets[bracket].Rungs.Count)
        {
            stopped.AddRange(ranked.Skip(current.Promoted));
            rungTrials = ranked.Take(current.Promoted).ToList();
            rung++;
        }
        else
        {
            bracket++;
            rung = 0;
            rungTrials = [];
        }
    }

    /// <summary>The trial with the best score reached at the largest resource it was given; null before any report.</summary>
    public int? Best => scores.Count == 0 ? null : scores.OrderByDescending(p => p.Value).ThenBy(p => p.Key).First().Key;
}
