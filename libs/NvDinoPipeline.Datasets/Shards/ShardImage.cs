namespace NvDinoPipeline.Datasets.Shards;

/// <summary>One staged image: interleaved RGB bytes, row by row from the top (<c>Rgb.Length == Width * Height * 3</c>).</summary>
/// <param name="RelativePath">The image's path inside the source ('/'-separated), as in the manifest.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the original file.</param>
public sealed record ShardImage(byte[] Rgb, int Width, int Height, string RelativePath, string Sha256);

/// <summary>What the index says about one staged image, read without its pixels.</summary>
public readonly record struct ShardImageInfo(int Width, int Height, string RelativePath, string Sha256);
