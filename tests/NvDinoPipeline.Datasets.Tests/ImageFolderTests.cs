using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Datasets.Tests;

/// <summary>The image files a folder holds, as inference and engine calibration open them.</summary>
public sealed class ImageFolderTests : IDisposable
{
    private static readonly ImageLimits Limits = ImageLimits.Pixels(1_000_000, "Test:MaxImagePixels");

    private readonly TempDirectory _folder = new("nvdino-image-folder");
    private readonly ArtifactStore _store;

    public ImageFolderTests()
    {
        Directory.CreateDirectory(_folder.Combine("artifacts"));
        _store = new ArtifactStore(Microsoft.Extensions.Options.Options.Create(new ArtifactStoreOptions
        {
            Root = new Uri(_folder.Combine("artifacts") + "/").AbsoluteUri,
            AllowedReadRoots = [new Uri(_folder.Path + "/").AbsoluteUri],
        }));
    }

    public void Dispose()
    {
        _store.Dispose();
        _folder.Dispose();
    }

    [Fact]
    public async Task Lists_image_files_recursively_in_ordinal_path_order_and_decodes_them_with_their_hash()
    {
        var images = Write("images", ("b/2.png", ImageFiles.Png(9, 7, seed: 1)), ("a.bmp", ImageFiles.Bmp(5, 4, seed: 2)),
            ("B.png", ImageFiles.Png(3, 3, seed: 3)), ("notes.txt", "not an image"u8.ToArray()));

        var folder = await ImageFolder.ListAsync(_store, images, CancellationToken.None);
        using var source = new ImageFileSource(_store, folder.Files, maxImageBytes: 1 << 20, Limits);

        Assert.False(folder.IsShards);
        Assert.Equal(["B.png", "a.bmp", "b/2.png"], Enumerable.Range(0, source.Count).Select(source.PathOf));
        var image = await source.ReadAsync(2, CancellationToken.None);
        Assert.Equal((9, 7, 3), (image.Width, image.Height, image.Channels));
        Assert.Equal(ImageFiles.Pattern(9, 7, seed: 1), image.Pixels);
        Assert.Equal("b/2.png", image.Path);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(_folder.Combine("images", "b", "2.png")))), image.Sha256);
    }

    [Fact]
    public async Task A_shard_at_the_top_makes_the_folder_a_staged_dataset()
    {
        var folder = Write("staged", (ShardFormat.FileName(0), []), ("preview/a.png", ImageFiles.Png(4, 4, seed: 1)));

        var listed = await ImageFolder.ListAsync(_store, folder, CancellationToken.None);

        Assert.True(listed.IsShards);
        Assert.Empty(listed.Files);
    }

    [Fact]
    public async Task A_folder_without_images_or_shards_says_what_was_looked_for()
    {
        var folder = Write("empty", ("readme.txt", "text"u8.ToArray()));

        var listed = await ImageFolder.ListAsync(_store, folder, CancellationToken.None);

        Assert.Empty(listed.Files);
        Assert.Contains("neither staged shards (dataset.json, shard-*.bin) nor image files (.jpg", listed.NothingFound);
    }

    [Fact]
    public async Task Refuses_files_over_the_byte_limit_and_headers_over_the_pixel_limit_naming_the_input_and_the_setting()
    {
        var folder = Write("limits", ("big.png", ImageFiles.Png(40, 40, seed: 1)), ("huge.png", ImageFiles.PngClaiming(100_000, 100_000)),
            ("cut.png", ImageFiles.Png(20, 20, seed: 2)[..100]), ("fake.jpg", "text, not a JPEG"u8.ToArray()));
        var listed = await ImageFolder.ListAsync(_store, folder, CancellationToken.None);
        var bigSize = listed.Files.Single(f => f.RelativePath == "big.png").Size;
        using var source = new ImageFileSource(_store, listed.Files, maxImageBytes: bigSize - 1, Limits);

        var big = await Assert.ThrowsAsync<UnreadableImageException>(() => source.ReadAsync(Index("big.png"), CancellationToken.None).AsTask());
        var huge = await Assert.ThrowsAsync<UnreadableImageException>(() => source.ReadAsync(Index("huge.png"), CancellationToken.None).AsTask());
        var cut = await Assert.ThrowsAsync<UnreadableImageException>(() => source.ReadAsync(Index("cut.png"), CancellationToken.None).AsTask());
        var fake = await Assert.ThrowsAsync<UnreadableImageException>(() => source.ReadAsync(Index("fake.jpg"), CancellationToken.None).AsTask());

        Assert.Equal("big.png", big.Path);
        Assert.Contains($"at most {bigSize - 1} are read", big.Reason);
        Assert.Equal("huge.png", huge.Path);
        Assert.Contains("100000×100000", huge.Reason);
        Assert.Contains("Test:MaxImagePixels is 1000000", huge.Reason);
        Assert.Contains("cut short", cut.Reason);
        Assert.Contains("not a JPEG, PNG", fake.Reason);
        Assert.StartsWith("'fake.jpg': ", fake.Message);

        int Index(string path) => listed.Files.ToList().FindIndex(f => f.RelativePath == path);
    }

    [Fact]
    public void Photoshop_and_hdr_files_are_refused_as_unsupported_rather_than_decoded()
    {
        var psd = "8BPS\0\u0001\0\0\0\0\0\0\0\u0003\0\0\0\u0010\0\0\0\u0010\0\u0008\0\u0003"u8.ToArray();

        var result = ImageDecoder.Decode("layers.psd", psd, psd.Length, Limits);

        Assert.Null(result.Image);
        Assert.Equal(ImageRefusal.UnsupportedFormat, result.Refusal);
        Assert.Contains("Photoshop (PSD)", result.Detail);
    }

    private Uri Write(string name, params (string Path, byte[] Data)[] files)
    {
        foreach (var (path, data) in files)
        {
            var full = _folder.Combine(name, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllBytes(full, data);
        }

        return new Uri(_folder.Combine(name) + "/");
    }
}
