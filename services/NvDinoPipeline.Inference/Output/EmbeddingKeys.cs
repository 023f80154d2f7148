namespace NvDinoPipeline.Inference.Output;

/// <summary>
/// The de-duplication key of a result: the job (or on-line request) and the input's position in it. A job
/// that runs again after a redelivery reads its inputs in the same order, so every result keeps its key.
/// </summary>
public static class EmbeddingKeys
{
    public static string For(Guid jobOrRequestId, int index) => $"{jobOrRequestId:N}:{index}";
}
