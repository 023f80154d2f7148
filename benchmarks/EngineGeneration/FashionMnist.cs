using System.Buffers.Binary;
using System.IO.Compression;

/// <summary>Debian's dataset-fashion-mnist IDX files: 28×28 grey images and their labels.</summary>
internal sealed class FashionMnist(byte[] pixels, byte[] labels, int count)
{
    public const string Folder = "/usr/share/datasets/fashion-mnist";
    public const int Side = 28;

    public int Count => count;

    public static FashionMnist Load(string split)
    {
        var images = Read(Path.Combine(Folder, $"{split}-images-idx3-ubyte.gz"), 2051, out var n, 16);
        var labels = Read(Path.Combine(Folder, $"{split}-labels-idx1-ubyte.gz"), 2049, out var m, 8);
        return n == m ? new FashionMnist(images, labels, n) : throw new InvalidDataException($"Fashion-MNIST {split}: {n} images but {m} labels.");
    }

    public int Label(int index) => labels[index];

    /// <summary>Image <paramref name="index"/> as interleaved RGB (the grey value in every channel).</summary>
    public byte[] Rgb(int index)
    {
        var rgb = new byte[Side * Side * 3];
        for (var i = 0; i < Side * Side; i++)
        {
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = pixels[index * Side * Side + i];
        }

        return rgb;
    }

    public ReadOnlySpan<byte> Grey(int index) => pixels.AsSpan(index * Side * Side, Side * Side);

    private static byte[] Read(string path, int magic, out int count, int header)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} is missing; install Debian's dataset-fashion-mnist.", path);
        }

        using var stream = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        var bytes = memory.ToArray();
        if (BinaryPrimitives.ReadInt32BigEndian(bytes) != magic)
        {
            throw new InvalidDataException($"{path} is not an IDX file with magic {magic}.");
        }

        count = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4));
        return bytes[header..];
    }
}
