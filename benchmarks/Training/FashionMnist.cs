using System.Buffers.Binary;
using System.IO.Compression;
using NvDinoPipeline.Datasets.Images;

namespace NvDinoPipeline.Benchmarks.Training;

/// <summary>Debian's dataset-fashion-mnist: 60 000 training and 10 000 test images of 28×28 grey levels in idx files.</summary>
internal sealed record FashionMnist(IReadOnlyList<DecodedImage> Images, byte[] Labels)
{
    public const string Folder = "/usr/share/datasets/fashion-mnist";

    /// <summary>The validation split: training images from here on are held out to choose hyperparameters on.</summary>
    public const int ValidationStart = 50_000;

    public static FashionMnist Load(string split, int? limit = null)
    {
        var images = ReadIdx(Path.Combine(Folder, $"{split}-images-idx3-ubyte.gz"), 2051);
        var labels = ReadIdx(Path.Combine(Folder, $"{split}-labels-idx1-ubyte.gz"), 2049);
        var count = Math.Min(limit ?? labels.Data.Length, labels.Data.Length);
        var (rows, cols) = (images.Dims[1], images.Dims[2]);
        var list = new List<DecodedImage>(count);
        for (var i = 0; i < count; i++)
            list.Add(new DecodedImage(images.Data.AsSpan(i * rows * cols, rows * cols).ToArray(), cols, rows, 1));
        return new FashionMnist(list, labels.Data[..count]);
    }

    private static (int[] Dims, byte[] Data) ReadIdx(string path, int magic)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} is missing; install Debian's dataset-fashion-mnist package.", path);
        using var gzip = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var memory = new MemoryStream();
        gzip.CopyTo(memory);
        var bytes = memory.ToArray();
        if (BinaryPrimitives.ReadInt32BigEndian(bytes) != magic)
            throw new InvalidDataException($"{path} is not an idx file with magic {magic}.");
        var dimensions = magic & 0xFF;
        var dims = Enumerable.Range(0, dimensions).Select(d => BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * d))).ToArray();
        return (dims, bytes[(4 + 4 * dimensions)..]);
    }
}
