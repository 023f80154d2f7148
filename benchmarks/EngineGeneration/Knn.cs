using NvDinoPipeline.Evaluation;
using NvDinoPipeline.Model.Scoring;

/// <summary>DINO's weighted k-NN top-1 accuracy (cosine, exp(sim/T) votes) by the evaluation stage's <see cref="WeightedKnn"/>.</summary>
internal static class Knn
{
    public static double Accuracy(float[] gallery, int[] galleryLabels, float[] queries, int[] queryLabels, int dimension, int k = 20, double temperature = 0.07) =>
        WeightedKnn.Score(new FeatureMatrix(gallery, galleryLabels.Length, dimension), galleryLabels, new FeatureMatrix(queries, queryLabels.Length, dimension),
            queryLabels, galleryLabels.Max() + 1, k, temperature, leaveOneOut: false).Top1;
}
