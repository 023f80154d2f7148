using NvDinoPipeline.Deployment;
using NvDinoPipeline.Quantization;

namespace NvDinoPipeline.EngineGeneration.Tests.Support;

internal static class Calibration
{
    /// <summary>Pre-processed generated images, <paramref name="count"/> from <paramref name="firstSeed"/> on, as one batch.</summary>
    public static float[] Images(int count, int firstSeed, int width = 40, int height = 36)
    {
        var preprocessor = new ImagePreprocessor(TinyVit.Metadata().Preprocessing);
        var batch = new float[count * preprocessor.ImageSize];
        for (var i = 0; i < count; i++)
        {
            preprocessor.Preprocess(TestImages.Shapes(width, height, firstSeed + i), width, height, batch.AsSpan(i * preprocessor.ImageSize, preprocessor.ImageSize));
        }

        return batch;
    }

    public static IReadOnlyList<CalibrationBatch> Batches(int batches, int batchSize, int firstSeed = 0) =>
        [.. Enumerable.Range(0, batches).Select(b => new CalibrationBatch(
            Images(batchSize, firstSeed + b * batchSize), [batchSize, 3, TinyVit.ImageSize, TinyVit.ImageSize]))];
}
