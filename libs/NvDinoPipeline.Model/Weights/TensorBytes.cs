using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Weights;

/// <summary>Raw little-endian copies between streams and the memory of contiguous CPU tensors.</summary>
internal static class TensorBytes
{
    private const long ChunkBytes = 1L << 26;

    public static long ByteCount(Tensor tensor) => tensor.numel() * tensor.element_size();

    /// <summary>Fills a new contiguous CPU tensor of the given type and shape with exactly its size in bytes from the stream.</summary>
    public static Tensor Read(Stream source, ScalarType dtype, long[] shape)
    {
        var tensor = empty(shape, dtype);
        try
        {
            ForEachChunk(tensor, chunk => source.ReadExactly(chunk));
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    public static void Write(Tensor tensor, Stream destination)
    {
        using var cpu = tensor.detach().cpu().contiguous();
        ForEachChunk(cpu, chunk => destination.Write(chunk));
    }

    private delegate void ChunkAction(Span<byte> chunk);

    private static void ForEachChunk(Tensor contiguous, ChunkAction action)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Tensor files are little-endian; big-endian hosts are not supported.");
        var count = contiguous.numel();
        if (count == 0)
            return;
        using var flat = contiguous.reshape(count);
        var perChunk = Math.Max(1, ChunkBytes / contiguous.element_size());
        for (long start = 0; start < count; start += perChunk)
        {
            using var part = flat.narrow(0, start, Math.Min(perChunk, count - start));
            action(part.bytes);
        }
    }
}
