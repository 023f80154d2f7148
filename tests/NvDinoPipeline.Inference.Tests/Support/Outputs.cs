using System.Text;
using System.Text.Json;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Inference.Output;

namespace NvDinoPipeline.Inference.Tests.Support;

/// <summary>Reads an inference job's files back the way a user would.</summary>
public static class Outputs
{
    /// <summary>inference.csv as (input_path, features) rows; RFC 4180 quoting.</summary>
    public static List<(string Path, float[] Features)> ReadCsv(string path)
    {
        var text = File.ReadAllText(path);
        var records = ParseCsv(text);
        Assert.Equal(["input_path", "features"], records[0]);
        return records.Skip(1).Select(r =>
        {
            Assert.Equal(2, r.Count);
            return (r[0], JsonSerializer.Deserialize<float[]>(r[1])!);
        }).ToList();
    }

    public static async Task<List<EmbeddingResult>> ReadBinaryAsync(string embeddings, string index, int dimension)
    {
        await using var vectors = File.OpenRead(embeddings);
        await using var lines = File.OpenRead(index);
        var results = new List<EmbeddingResult>();
        await foreach (var result in EmbeddingFiles.ReadAsync(vectors, lines, dimension, CancellationToken.None))
        {
            results.Add(result);
        }
        return results;
    }

    public static List<EmbeddingFiles.FailureEntry> ReadFailures(string path) =>
        File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<EmbeddingFiles.FailureEntry>(l, EmbeddingFiles.Json)!).ToList();

    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
        }
        return dot / Math.Sqrt(aa * bb);
    }

    private static List<List<string>> ParseCsv(string text)
    {
        var records = new List<List<string>>();
        var record = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"':
                    quoted = true;
                    break;
                case ',':
                    record.Add(field.ToString());
                    field.Clear();
                    break;
                case '\n':
                    record.Add(field.ToString());
                    field.Clear();
                    records.Add(record);
                    record = [];
                    break;
                default:
                    field.Append(c);
                    break;
            }
        }
        Assert.True(field.Length == 0 && record.Count == 0, "inference.csv does not end with a line break");
        return records;
    }
}
