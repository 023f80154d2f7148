using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.Inference.Output;

/// <summary>
/// The files an inference job writes into its job folder. <c>embeddings.f32</c> is N×D float32 little-endian,
/// row <c>i</c> being line <c>i</c> of <c>embeddings.index.jsonl</c>; <c>inference.csv</c> holds the same
/// vectors as text, in the same order.
/// </summary>
public static class EmbeddingFiles
{
    public const string Csv = "inference.csv";
    public const string Jsonl = "inference.jsonl";
    public const string Embeddings = "embeddings.f32";
    public const string Index = "embeddings.index.jsonl";
    public const string Failures = "failures.jsonl";
    public const string Summary = "inference.json";

    /// <summary>Artifact names recorded on the job (and read by <c>nvdino results follow</c>).</summary>
    public const string CsvArtifact = "inference_csv";
    public const string JsonlArtifact = "inference_jsonl";
    public const string EmbeddingsArtifact = "embeddings";
    public const string IndexArtifact = "embeddings_index";
    public const string FailuresArtifact = "failures";
    public const string SummaryArtifact = "summary";

    /// <summary>The job metric holding D, the floats per embedding.</summary>
    public const string DimensionMetric = "dimension";

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Reads the binary embeddings with their index, in row order.</summary>
    /// <exception cref="InvalidDataException">A line of the index is malformed, or the two files disagree in length.</exception>
    public static async IAsyncEnumerable<EmbeddingResult> ReadAsync(Stream embeddings, Stream index, int dimension,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        using var lines = new StreamReader(index);
        var row = new byte[dimension * sizeof(float)];
        var number = 0;
        while (await lines.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }
            number++;
            var entry = JsonSerializer.Deserialize<IndexEntry>(line, Json);
            if (entry is not { Key.Length: > 0, InputPath: not null, ContentSha256: not null })
            {
                throw new InvalidDataException($"Line {number} of the embeddings index is not an index entry: {line}");
            }
            try
            {
                await embeddings.ReadExactlyAsync(row, cancellationToken);
            }
            catch (EndOfStreamException exception)
            {
                throw new InvalidDataException($"The embeddings file ends before row {number} of its index.", exception);
            }
            var vector = new float[dimension];
            for (var i = 0; i < dimension; i++)
            {
                vector[i] = BinaryPrimitives.ReadSingleLittleEndian(row.AsSpan(i * sizeof(float)));
            }
            yield return new EmbeddingResult { Key = entry.Key, InputPath = entry.InputPath, ContentSha256 = entry.ContentSha256, Embedding = vector };
        }
        if (await embeddings.ReadAsync(row.AsMemory(0, 1), cancellationToken) != 0)
        {
            throw new InvalidDataException($"The embeddings file has more rows than the {number} of its index.");
        }
    }

    /// <summary>One line of <c>embeddings.index.jsonl</c>.</summary>
    public sealed record IndexEntry(string Key, string InputPath, string ContentSha256);

    /// <summary>One line of <c>failures.jsonl</c>.</summary>
    public sealed record FailureEntry(string InputPath, string Reason);

    /// <summary>One line of <c>inference.jsonl</c> (spec <c>inference.output_format: jsonl</c>).</summary>
    public sealed record FeaturesEntry(string InputPath, float[] Features);
}
