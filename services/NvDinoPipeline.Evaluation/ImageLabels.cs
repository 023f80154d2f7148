using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;
using Sylvan.Data.Csv;

namespace NvDinoPipeline.Evaluation;

/// <summary>The labelled images of one set: their positions in the source and their class names.</summary>
public sealed record LabelledImages(IReadOnlyList<int> Indices, IReadOnlyList<string> Labels, string From)
{
    public int Count => Indices.Count;

    public IReadOnlyList<string> Classes { get; } = Labels.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// At most <paramref name="max"/> of the images (0: all), spread evenly over the staged order so that every class
    /// stays represented (staged images are in path order, so the first ones are often of one class).
    /// </summary>
    public LabelledImages Take(int max)
    {
        if (max <= 0 || max >= Count)
        {
            return this;
        }
        var picked = Enumerable.Range(0, max).Select(i => (int)((long)i * Count / max)).ToList();
        return new LabelledImages(picked.Select(i => Indices[i]).ToList(), picked.Select(i => Labels[i]).ToList(), From);
    }
}

/// <summary>
/// Labels of staged images: each image's folder name (class folders, as ImageNet and TAO's classification data come),
/// or a labels CSV with the columns <c>input_path,label</c>.
/// </summary>
public static class ImageLabels
{
    /// <summary>A labels file larger than this is refused: it names images, it does not hold them.</summary>
    public const long MaxCsvBytes = 256L * 1024 * 1024;

    /// <summary>
    /// The labelled images of <paramref name="source"/>: by <paramref name="csv"/> when it is given (images it does not
    /// name are left out), else by folder name (images at the root are left out).
    /// </summary>
    public static LabelledImages Of(IImageSource source, IReadOnlyDictionary<string, string>? csv, string csvName)
    {
        ArgumentNullException.ThrowIfNull(source);
        var indices = new List<int>();
        var labels = new List<string>();
        for (var i = 0; i < source.Count; i++)
        {
            var path = source.PathOf(i);
            var label = csv is null ? ImagePaths.ClassFolderOf(path) : csv.GetValueOrDefault(ImagePaths.Normalise(path));
            if (label is not null)
            {
                indices.Add(i);
                labels.Add(label);
            }
        }
        return new LabelledImages(indices, labels, csv is null ? "folder names" : csvName);
    }

    /// <summary>Reads a labels CSV (header <c>input_path,label</c>) named by the spec key <paramref name="key"/>.</summary>
    /// <exception cref="StageInputException">The file cannot be read, lacks a column, names an image twice or is too large.</exception>
    public static async Task<IReadOnlyDictionary<string, string>> ReadCsvAsync(IArtifactStore store, string value, string key,
        string scratchDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var path = await store.LocalPathAsync(value, key, Path.Combine(scratchDirectory, "labels"), cancellationToken);
        if (new FileInfo(path).Length > MaxCsvBytes)
        {
            throw new StageInputException($"{key}: '{value}' is larger than {MaxCsvBytes / (1024 * 1024)} MiB; a labels CSV holds one input_path,label row per image.");
        }
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        using var reader = CsvDataReader.Create(path, new CsvDataReaderOptions { HasHeaders = true });
        int pathColumn = Column(reader, "input_path"), labelColumn = Column(reader, "label");
        if (pathColumn < 0 || labelColumn < 0)
        {
            throw new StageInputException($"{key}: '{value}' must have the header input_path,label; it has {string.Join(",", Enumerable.Range(0, reader.FieldCount).Select(reader.GetName))}.");
        }
        var row = 1;
        while (await reader.ReadAsync(cancellationToken))
        {
            row++;
            var input = ImagePaths.Normalise(reader.GetString(pathColumn));
            var label = reader.GetString(labelColumn).Trim();
            if (input.Length == 0 || label.Length == 0)
            {
                throw new StageInputException($"{key}: '{value}' row {row} has an empty input_path or label.");
            }
            if (!labels.TryAdd(input, label))
            {
                throw new StageInputException($"{key}: '{value}' names {input} twice (row {row}).");
            }
        }
        return labels;
    }

    private static int Column(CsvDataReader reader, string name)
    {
        for (var i = 0; i < reader.FieldCount; i++)
        {
            if (string.Equals(reader.GetName(i).Trim(), name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }
        return -1;
    }
}
