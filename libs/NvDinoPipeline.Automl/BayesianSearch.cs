using MathNet.Numerics.Distributions;
using MathNet.Numerics.LinearAlgebra;

namespace NvDinoPipeline.Automl;

/// <summary>
/// Bayesian optimisation over the unit cube of a <see cref="SearchSpace"/>: a Gaussian process with a Matérn 5/2
/// kernel on the scores seen so far (standardised; length scale chosen by marginal likelihood from a small grid), and
/// the next configuration the one of largest expected improvement among random candidates and perturbations of the
/// best so far. The first <see cref="InitialRandom"/> proposals are uniform draws, as the process needs points to fit.
/// Higher scores are better.
/// </summary>
public sealed class BayesianSearch(SearchSpace space, Random random)
{
    private static readonly double[] LengthScales = [0.05, 0.1, 0.2, 0.4, 0.8];
    private const double Noise = 1e-4;
    private const int Candidates = 2000;

    private readonly List<(double[] Unit, double Score)> observations = [];

    public SearchSpace Space { get; } = space ?? throw new ArgumentNullException(nameof(space));

    public int InitialRandom { get; init; } = 3;

    public IReadOnlyList<(double[] Unit, double Score)> Observations => observations;

    /// <summary>Records a configuration's score (NaN, a failed trial, counts as the worst seen).</summary>
    public void Observe(IReadOnlyDictionary<string, object> configuration, double score)
    {
        var worst = observations.Count == 0 ? 0 : observations.Min(o => o.Score);
        observations.Add((Space.UnitOf(configuration), double.IsFinite(score) ? score : worst));
    }

    /// <summary>The next configuration to try.</summary>
    public IReadOnlyDictionary<string, object> Propose() => Space.At(ProposeUnit());

    public double[] ProposeUnit()
    {
        if (Space.Dimension == 0 || observations.Count < InitialRandom)
            return Space.RandomUnit(random);
        var scores = observations.Select(o => o.Score).ToArray();
        var mean = scores.Average();
        var spread = Math.Sqrt(scores.Select(s => (s - mean) * (s - mean)).Average());
        if (spread < 1e-12)
            return Space.RandomUnit(random);
        var y = Vector<double>.Build.DenseOfEnumerable(scores.Select(s => (s - mean) / spread));
        var points = observations.Select(o => o.Unit).ToList();
        var model = LengthScales.Select(scale => Fit(points, y, scale)).MaxBy(fit => fit.LogLikelihood)!;
        var best = y.Maximum();
        var bestPoint = points[y.MaximumIndex()];

        double[]? chosen = null;
        var chosenImprovement = double.NegativeInfinity;
        for (var c = 0; c < Candidates; c++)
        {
            // Half the candidates explore the whole cube, half look near the best point so far.
            var candidate = c % 2 == 0
                ? Space.RandomUnit(random)
                : [.. bestPoint.Select(x => Math.Clamp(x + Normal.Sample(random, 0, model.LengthScale / 2), 0, 1))];
            var improvement = model.ExpectedImprovement(candidate, best);
            if (improvement > chosenImprovement)
                (chosen, chosenImprovement) = (candidate, improvement);
        }
        return chosen!;
    }

    private static GaussianProcess Fit(IReadOnlyList<double[]> points, Vector<double> y, double lengthScale)
    {
        var n = points.Count;
        var k = Matrix<double>.Build.Dense(n, n, (i, j) => Matern52(points[i], points[j], lengthScale) + (i == j ? Noise : 0));
        var cholesky = k.Cholesky();
        var alpha = cholesky.Solve(y);
        var logDeterminant = 2 * Enumerable.Range(0, n).Sum(i => Math.Log(cholesky.Factor[i, i]));
        var logLikelihood = -0.5 * y.DotProduct(alpha) - 0.5 * logDeterminant - 0.5 * n * Math.Log(2 * Math.PI);
        return new GaussianProcess(points, alpha, cholesky.Factor, lengthScale, logLikelihood);
    }

    private static double Matern52(double[] a, double[] b, double lengthScale)
    {
        var squared = 0.0;
        for (var i = 0; i < a.Length; i++)
            squared += (a[i] - b[i]) * (a[i] - b[i]);
        var r = Math.Sqrt(5 * squared) / lengthScale;
        return (1 + r + r * r / 3) * Math.Exp(-r);
    }

    private sealed record GaussianProcess(IReadOnlyList<double[]> Points, Vector<double> Alpha, Matrix<double> Factor, double LengthScale, double LogLikelihood)
    {
        /// <summary>E[max(0, f(x) − best)] under the posterior at <paramref name="x"/>.</summary>
        public double ExpectedImprovement(double[] x, double best)
        {
            var kx = Vector<double>.Build.Dense(Points.Count, i => Matern52(Points[i], x, LengthScale));
            var mean = kx.DotProduct(Alpha);
            var v = Factor.SolveLowerTriangular(kx);
            var variance = Math.Max(1e-12, 1 + Noise - v.DotProduct(v));
            var sigma = Math.Sqrt(variance);
            var z = (mean - best) / sigma;
            return (mean - best) * Normal.CDF(0, 1, z) + sigma * Normal.PDF(0, 1, z);
        }
    }
}

internal static class LowerTriangular
{
    /// <summary>Solves L v = b by forward substitution for a lower-triangular L.</summary>
    public static Vector<double> SolveLowerTriangular(this Matrix<double> lower, Vector<double> b)
    {
        var v = Vector<double>.Build.Dense(b.Count);
        for (var i = 0; i < b.Count; i++)
        {
            var sum = b[i];
            for (var j = 0; j < i; j++)
                sum -= lower[i, j] * v[j];
            v[i] = sum / lower[i, i];
        }
        return v;
    }
}
