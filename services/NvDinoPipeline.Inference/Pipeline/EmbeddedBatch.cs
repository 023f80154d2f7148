namespace NvDinoPipeline.Inference.Pipeline;

/// <summary>An input that went through the model.</summary>
/// <param name="Index">Its position in the dataset.</param>
public sealed record EmbeddedItem(int Index, string Path, string Sha256);

/// <summary>An input that could not be embedded, and why.</summary>
public sealed record FailedInput(int Index, string Path, string Reason);

/// <summary>
/// One batch after the model: the embedding of <c>Items[i]</c> is row <c>i</c> of <see cref="Embeddings"/>.
/// The buffers are reused for later batches once the callback that receives this batch returns.
/// </summary>
public sealed class EmbeddedBatch(int batchIndex, IReadOnlyList<EmbeddedItem> items, IReadOnlyList<FailedInput> failures,
    ReadOnlyMemory<float> embeddings, int dimension)
{
    /// <summary>0, 1, 2, … in dataset order.</summary>
    public int BatchIndex => batchIndex;

    public IReadOnlyList<EmbeddedItem> Items => items;

    public IReadOnlyList<FailedInput> Failures => failures;

    /// <summary>Items.Count × Dimension floats, row-major.</summary>
    public ReadOnlyMemory<float> Embeddings => embeddings;

    public int Dimension => dimension;

    public ReadOnlySpan<float> EmbeddingOf(int item) => embeddings.Span.Slice(item * dimension, dimension);
}
