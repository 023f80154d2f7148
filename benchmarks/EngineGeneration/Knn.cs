/// <summary>k-nearest-neighbour classification by cosine similarity, each neighbour's vote weighted by exp(sim/T) (DINO's evaluation).</summary>
internal static class Knn
{
    public static double Accuracy(float[] gallery, int[] galleryLabels, float[] queries, int[] queryLabels, int dimension, int k = 20, double temperature = 0.07)
    {
        var g = Normalise(gallery, dimension);
        var q = Normalise(queries, dimension);
        var n = galleryLabels.Length;
        var correct = 0;
        var classes = galleryLabels.Max() + 1;
        for (var i = 0; i < queryLabels.Length; i++)
        {
            var sims = new (double Sim, int Label)[n];
            var query = q.AsSpan(i * dimension, dimension);
            for (var j = 0; j < n; j++)
            {
                double dot = 0;
                var item = g.AsSpan(j * dimension, dimension);
                for (var t = 0; t < dimension; t++)
                {
                    dot += query[t] * item[t];
                }

                sims[j] = (dot, galleryLabels[j]);
            }

            var votes = new double[classes];
            foreach (var (sim, label) in sims.OrderByDescending(s => s.Sim).Take(k))
            {
                votes[label] += Math.Exp(sim / temperature);
            }

            if (Array.IndexOf(votes, votes.Max()) == queryLabels[i])
            {
                correct++;
            }
        }

        return (double)correct / queryLabels.Length;
    }

    private static float[] Normalise(float[] rows, int dimension)
    {
        var result = new float[rows.Length];
        for (var r = 0; r < rows.Length / dimension; r++)
        {
            var row = rows.AsSpan(r * dimension, dimension);
            var norm = MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.SumOfSquares(row));
            System.Numerics.Tensors.TensorPrimitives.Divide(row, Math.Max(norm, 1e-12f), result.AsSpan(r * dimension, dimension));
        }

        return result;
    }
}
