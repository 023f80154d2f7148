using System.Text.Json;

namespace NvDinoPipeline.Staging.Output;

/// <summary>Why a file of the source was not staged.</summary>
internal enum SkipReason
{
    UnsafePath,
    Link,
    SpecialFile,
    TooLarge,
    NotAnImage,
    UnsupportedFormat,
    Truncated,
    Corrupt,
    AbsurdDimensions,
}

internal static class SkipReasonCodes
{
    /// <summary>The code written to the report and statistics (snake_case, stable).</summary>
    public static string Code(this SkipReason reason) => reason switch
    {
        SkipReason.UnsafePath => "unsafe_path",
        SkipReason.Link => "link",
        SkipReason.SpecialFile => "special_file",
        SkipReason.TooLarge => "too_large",
        SkipReason.NotAnImage => "not_an_image",
        SkipReason.UnsupportedFormat => "unsupported_format",
        SkipReason.Truncated => "truncated",
        SkipReason.Corrupt => "corrupt",
        SkipReason.AbsurdDimensions => "absurd_dimensions",
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, null),
    };
}

internal sealed record SkippedFile(string Path, SkipReason Reason, string Detail);

internal sealed record DuplicateFile(string Path, string DuplicateOf, string Sha256);

/// <summary>
/// Every file that was skipped or dropped as a duplicate, with the reason. Filled from the reader and the
/// decoders at once. Counts are exact; the listed files stop at <see cref="MaxListed"/> per kind so that a
/// hostile archive of millions of junk entries cannot grow the report without bound.
/// </summary>
internal sealed class StagingReport
{
    public const int MaxListed = 100_000;

    private readonly Lock _lock = new();
    private readonly List<SkippedFile> _skipped = [];
    private readonly List<DuplicateFile> _duplicates = [];
    private readonly int[] _counts = new int[Enum.GetValues<SkipReason>().Length];
    private int _duplicateCount;

    public int SkippedCount
    {
        get
        {
            lock (_lock)
            {
                return _counts.Sum();
            }
        }
    }

    public int DuplicateCount
    {
        get
        {
            lock (_lock)
            {
                return _duplicateCount;
            }
        }
    }

    public void Skip(string path, SkipReason reason, string detail)
    {
        lock (_lock)
        {
            _counts[(int)reason]++;
            if (_skipped.Count < MaxListed)
            {
                _skipped.Add(new SkippedFile(path, reason, detail));
            }
        }
    }

    public void Duplicate(string path, string duplicateOf, string sha256)
    {
        lock (_lock)
        {
            _duplicateCount++;
            if (_duplicates.Count < MaxListed)
            {
                _duplicates.Add(new DuplicateFile(path, duplicateOf, sha256));
            }
        }
    }

    /// <summary>Skipped files per reason code, only the reasons that occurred.</summary>
    public IReadOnlyDictionary<string, int> CountsByReason()
    {
        lock (_lock)
        {
            return Enum.GetValues<SkipReason>()
                .Where(r => _counts[(int)r] > 0)
                .ToDictionary(r => r.Code(), r => _counts[(int)r]);
        }
    }

    public IReadOnlyList<SkippedFile> Skipped()
    {
        lock (_lock)
        {
            return [.. _skipped.OrderBy(s => s.Path, StringComparer.Ordinal)];
        }
    }

    public IReadOnlyList<DuplicateFile> Duplicates()
    {
        lock (_lock)
        {
            return [.. _duplicates.OrderBy(d => d.Path, StringComparer.Ordinal)];
        }
    }

    /// <summary>A short human summary, e.g. "3 not_an_image, 1 corrupt".</summary>
    public string Summary()
    {
        var counts = CountsByReason();
        return counts.Count == 0 ? "none" : string.Join(", ", counts.Select(c => $"{c.Value} {c.Key}"));
    }

    public void Write(Utf8JsonWriter json, Uri source)
    {
        json.WriteStartObject();
        json.WriteString("source", source.AbsoluteUri);
        json.WriteNumber("skippedCount", SkippedCount);
        json.WriteNumber("duplicateCount", DuplicateCount);
        json.WriteStartObject("skippedByReason");
        foreach (var (code, count) in CountsByReason())
        {
            json.WriteNumber(code, count);
        }
        json.WriteEndObject();
        json.WriteStartArray("skipped");
        foreach (var skipped in Skipped())
        {
            json.WriteStartObject();
            json.WriteString("path", skipped.Path);
            json.WriteString("reason", skipped.Reason.Code());
            json.WriteString("detail", skipped.Detail);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("duplicates");
        foreach (var duplicate in Duplicates())
        {
            json.WriteStartObject();
            json.WriteString("path", duplicate.Path);
            json.WriteString("duplicateOf", duplicate.DuplicateOf);
            json.WriteString("sha256", duplicate.Sha256);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
