using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Inference.Pipeline;

namespace NvDinoPipeline.Inference.Output;

/// <summary>
/// Writes a job's results into a local folder as batches arrive, in dataset order: <c>inference.csv</c>
/// (TAO's <c>input_path,features</c>, the vector as a quoted JSON array), <c>embeddings.f32</c>,
/// <c>embeddings.index.jsonl</c>, <c>failures.jsonl</c> and, when asked, <c>inference.jsonl</c>.
/// Floats are written in their shortest round-trip form, so the text files parse back to the very
/// values of the binary file.
/// </summary>
public sealed class EmbeddingOutputWriter : IAsyncDisposable
{
    private readonly string _folder;
    private readonly Guid _jobId;
    private readonly int _dimension;
    private readonly StreamWriter _csv;
    private readonly FileStream _embeddings;
    private readonly StreamWriter _index;
    private readonly StreamWriter _failures;
    private readonly StreamWriter? _jsonl;
    private readonly byte[] _row;
    private readonly StringBuilder _line = new();
    private bool _completed;

    public EmbeddingOutputWriter(string folder, Guid jobId, int dimension, bool writeJsonl)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        Directory.CreateDirectory(folder);
        _folder = folder;
        _jobId = jobId;
        _dimension = dimension;
        _row = new byte[dimension * sizeof(float)];
        _csv = Text(EmbeddingFiles.Csv);
        _embeddings = new FileStream(PathOf(EmbeddingFiles.Embeddings), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        _index = Text(EmbeddingFiles.Index);
        _failures = Text(EmbeddingFiles.Failures);
        _jsonl = writeJsonl ? Text(EmbeddingFiles.Jsonl) : null;
        _csv.Write("input_path,features\n");
    }

    public int EmbeddedCount { get; private set; }

    public int FailedCount { get; private set; }

    public bool WritesJsonl => _jsonl is not null;

    /// <summary>The inputs of the last written batch that were not embedded, in dataset order.</summary>
    public IReadOnlyList<FailedInput> Failures { get; private set; } = [];

    public string PathOf(string fileName) => Path.Combine(_folder, fileName);

    /// <summary>Appends a batch to every file and returns its results as they are published.</summary>
    public async Task<IReadOnlyList<EmbeddingResult>> WriteAsync(EmbeddedBatch batch, CancellationToken cancellationToken)
    {
        var results = new List<EmbeddingResult>(batch.Items.Count);
        var failures = new List<FailedInput>(batch.Failures);
        for (var i = 0; i < batch.Items.Count; i++)
        {
            var item = batch.Items[i];
            var vector = batch.EmbeddingOf(i);
            if (!IsFinite(vector))
            {
                // JSON has no NaN or infinity, and such a vector is useless to a consumer: the input is reported instead.
                failures.Add(new FailedInput(item.Index, item.Path, "the model produced non-finite values (NaN or infinity) for this image"));
                continue;
            }
            var result = new EmbeddingResult
            {
                Key = EmbeddingKeys.For(_jobId, item.Index),
                InputPath = item.Path,
                ContentSha256 = item.Sha256,
                Embedding = vector.ToArray(),
            };
            results.Add(result);
            var values = result.Embedding;
            for (var d = 0; d < _dimension; d++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(_row.AsSpan(d * sizeof(float)), values[d]);
            }
            await _embeddings.WriteAsync(_row, cancellationToken);

            _line.Clear();
            AppendCsvField(_line, item.Path);
            _line.Append(",\"");
            AppendVector(_line, values);
            _line.Append("\"\n");
            await _csv.WriteAsync(_line, cancellationToken);

            await _index.WriteAsync(JsonSerializer.Serialize(new EmbeddingFiles.IndexEntry(result.Key, item.Path, item.Sha256), EmbeddingFiles.Json) + "\n");
            if (_jsonl is not null)
            {
                _line.Clear();
                _line.Append("{\"input_path\":").Append(JsonSerializer.Serialize(item.Path, EmbeddingFiles.Json)).Append(",\"features\":");
                AppendVector(_line, values);
                _line.Append("}\n");
                await _jsonl.WriteAsync(_line, cancellationToken);
            }
        }
        foreach (var failure in failures.OrderBy(f => f.Index))
        {
            await _failures.WriteAsync(JsonSerializer.Serialize(new EmbeddingFiles.FailureEntry(failure.Path, failure.Reason), EmbeddingFiles.Json) + "\n");
        }
        EmbeddedCount += results.Count;
        FailedCount += failures.Count;
        Failures = failures;
        return results;
    }

    /// <summary>Flushes and closes every file.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        if (_completed)
        {
            return;
        }
        _completed = true;
        foreach (var writer in Writers())
        {
            await writer.FlushAsync(cancellationToken);
            await writer.DisposeAsync();
        }
        await _embeddings.FlushAsync(cancellationToken);
        await _embeddings.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_completed)
        {
            return;
        }
        _completed = true;
        foreach (var writer in Writers())
        {
            await writer.DisposeAsync();
        }
        await _embeddings.DisposeAsync();
    }

    /// <summary>A vector as a JSON array of shortest round-trip floats: <c>[0.125,-3.5E-05]</c>.</summary>
    public static void AppendVector(StringBuilder text, ReadOnlySpan<float> vector)
    {
        Span<char> number = stackalloc char[32];
        text.Append('[');
        for (var d = 0; d < vector.Length; d++)
        {
            if (d > 0)
            {
                text.Append(',');
            }
            vector[d].TryFormat(number, out var written, default, CultureInfo.InvariantCulture);
            text.Append(number[..written]);
        }
        text.Append(']');
    }

    /// <summary>RFC 4180: a field holding a comma, quote or line break is quoted, quotes doubled.</summary>
    public static void AppendCsvField(StringBuilder text, string value)
    {
        if (value.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            text.Append(value);
            return;
        }
        text.Append('"').Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
    }

    private static bool IsFinite(ReadOnlySpan<float> vector)
    {
        foreach (var value in vector)
        {
            if (!float.IsFinite(value))
            {
                return false;
            }
        }
        return true;
    }

    private IEnumerable<StreamWriter> Writers() => _jsonl is null ? [_csv, _index, _failures] : [_csv, _index, _failures, _jsonl];

    private StreamWriter Text(string name) =>
        new(new FileStream(PathOf(name), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16), new UTF8Encoding(false)) { NewLine = "\n" };
}
