using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>ONNX Runtime runs of a job's models over pre-processed images: the fp32 reference and the onnxruntime artifact.</summary>
internal static class OnnxRuns
{
    /// <summary>Runs a model on <paramref name="count"/> pre-processed images in batches of the profile's opt size and returns the embeddings.</summary>
    public static float[] Embed(string modelPath, float[] input, int count, SourceModel source, int threads)
    {
        using var runner = new OnnxModelRunner(modelPath, threads);
        var size = source.ImageFloats;
        var d = source.EmbeddingDimension;
        var batch = source.DynamicBatch ? Math.Max(1, source.Profile.OptBatch) : source.Profile.MinBatch;
        var embeddings = new float[count * d];
        for (var start = 0; start < count; start += batch)
        {
            var rows = Math.Min(batch, count - start);
            var fed = source.DynamicBatch ? rows : batch;
            var chunk = Repeat(input.AsSpan(start * size, rows * size).ToArray(), rows, fed, size);
            var output = runner.Run(chunk, [fed, source.Profile.Channels, source.Profile.Height, source.Profile.Width])
                .Single(o => o.Name == source.OutputName);
            if (output.Data.Length != fed * d)
            {
                throw new StageInputException($"Output '{source.OutputName}' of {modelPath} has shape [{string.Join(", ", output.Shape)}]; expected [{fed}, {d}].");
            }

            output.Data.AsSpan(0, rows * d).CopyTo(embeddings.AsSpan(start * d));
        }

        return embeddings;
    }

    /// <summary>Runs ONNX Runtime work off the job's thread; a model it rejects fails the job naming what was being done.</summary>
    public static async Task<T> StepAsync<T>(Func<T> work, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await Task.Run(work, cancellationToken);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException exception)
        {
            throw new StageInputException($"ONNX Runtime could not {what}: {exception.Message}", exception);
        }
    }

    /// <summary>The first <paramref name="count"/> images of <paramref name="input"/> repeated cyclically up to <paramref name="batch"/> images.</summary>
    public static float[] Repeat(float[] input, int count, int batch, int imageFloats)
    {
        if (batch == count)
        {
            return input.Length == count * imageFloats ? input : input[..(count * imageFloats)];
        }

        var result = new float[batch * imageFloats];
        for (var i = 0; i < batch; i++)
        {
            input.AsSpan(i % count * imageFloats, imageFloats).CopyTo(result.AsSpan(i * imageFloats));
        }

        return result;
    }
}
