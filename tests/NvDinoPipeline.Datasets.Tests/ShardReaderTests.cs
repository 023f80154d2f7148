using System.Security.Cryptography;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Datasets.Tests;

public sealed class ShardReaderTests : IDisposable
{
    private readonly TempDirectory _folder = new("nvdino-shards");

    public void Dispose() => _folder.Dispose();

    private async Task<string> WriteShardAsync(string name, params (int Width, int Height, string Path)[] images)
    {
        var path = _folder.Combine(name);
        await using var file = File.Create(path);
        var writer = new ShardWriter(file);
        foreach (var (width, height, relativePath) in images)
        {
            var rgb = ImageFiles.Pattern(width, height, seed: width * 31 + height);
            await writer.AddAsync(rgb, width, height, relativePath, Convert.ToHexStringLower(SHA256.HashData(rgb)), CancellationToken.None);
        }
        await writer.CompleteAsync(CancellationToken.None);
        return path;
    }

    [Fact]
    public async Task Reads_back_every_image_of_a_shard_by_index()
    {
        var path = await WriteShardAsync("shard-00000.bin", (3, 2, "a.png"), (5, 7, "dir/ünïcode b.png"), (1, 1, "c.png"));

        using var reader = ShardReader.Open(path);

        Assert.Equal(3, reader.Count);
        var (rgb, width, height, relativePath, sha256) = reader.Read(1);
        Assert.Equal((5, 7, "dir/ünïcode b.png"), (width, height, relativePath));
        Assert.Equal(ImageFiles.Pattern(5, 7, seed: 5 * 31 + 7), rgb);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(rgb)), sha256);
        Assert.Equal(new ShardImageInfo(1, 1, "c.png", reader.Read(2).Sha256), reader.GetInfo(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => reader.Read(3));
    }

    [Fact]
    public async Task A_folder_of_shards_reads_as_one_dataset_in_shard_order()
    {
        await WriteShardAsync("shard-00001.bin", (2, 2, "third.png"));
        await WriteShardAsync("shard-00000.bin", (2, 2, "first.png"), (3, 3, "second.png"));

        using var reader = ShardReader.Open(_folder.Path);

        Assert.Equal(["first.png", "second.png", "third.png"], Enumerable.Range(0, reader.Count).Select(i => reader.GetInfo(i).RelativePath));
    }

    [Fact]
    public async Task Reads_concurrently_from_several_threads()
    {
        var images = Enumerable.Range(1, 50).Select(i => (i, i + 1, $"{i}.png")).ToArray();
        var path = await WriteShardAsync("shard-00000.bin", images);
        using var reader = ShardReader.Open(path);

        Parallel.For(0, 500, i =>
        {
            var image = reader.Read(i % 50);
            Assert.Equal(ImageFiles.Pattern(image.Width, image.Height, seed: image.Width * 31 + image.Height), image.Rgb);
        });
    }

    [Fact]
    public async Task A_cut_shard_is_refused_with_its_name()
    {
        var path = await WriteShardAsync("shard-00000.bin", (20, 20, "a.png"), (20, 20, "b.png"));
        var bytes = await File.ReadAllBytesAsync(path);
        await File.WriteAllBytesAsync(path, bytes[..^30]);

        var failure = Assert.Throws<InvalidDataException>(() => ShardReader.Open(path));

        Assert.Contains(path, failure.Message);
    }

    [Fact]
    public async Task A_shard_whose_count_disagrees_with_the_dataset_description_is_refused()
    {
        await WriteShardAsync("shard-00000.bin", (2, 2, "a.png"));
        await File.WriteAllTextAsync(_folder.Combine("dataset.json"),
            """{"format":"nvdino-rgb-shards","version":1,"channels":3,"imageCount":5,"maxSide":512,"shards":[{"name":"shard-00000.bin","imageCount":5,"bytes":1}]}""");

        var failure = Assert.Throws<InvalidDataException>(() => ShardReader.Open(_folder.Path));

        Assert.Contains("lists 5", failure.Message);
    }
}
