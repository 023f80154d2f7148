using Microsoft.Extensions.Logging.Abstractions;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Export.Tests.Support;
using NvDinoPipeline.Export.Validation;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Export.Tests;

/// <summary>The parity check runs on the job's own staged images when it has them.</summary>
public sealed class ValidationImagesTests : IDisposable
{
    private readonly ExportTestBed _bed = new();

    private Uri Shards => _bed.Store.JobFolder(_bed.PipelineId, Guid.NewGuid()).Append("shards/");

    [Fact]
    public async Task Reads_the_first_images_of_the_staged_shards_in_order()
    {
        var shards = Shards;
        var images = Enumerable.Range(0, 5).Select(i => Image(20 + i, 30, seed: i)).ToList();
        await WriteShardAsync(shards.Append("shard-00000.bin"), images[..2]);
        await WriteShardAsync(shards.Append("shard-00001.bin"), images[2..]);

        var set = await ValidationImages.LoadAsync(_bed.Store, shards, 4, Scratch(), NullLogger.Instance, CancellationToken.None);

        Assert.Equal(4, set.Images.Count);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal((images[i].Width, images[i].Height), (set.Images[i].Width, set.Images[i].Height));
            Assert.Equal(images[i].Pixels, set.Images[i].Pixels);
        }
        Assert.Contains(shards.AbsoluteUri, set.Source);
    }

    [Fact]
    public async Task Repeats_a_dataset_smaller_than_the_batch()
    {
        var shards = Shards;
        var images = new[] { Image(16, 16, seed: 1), Image(24, 16, seed: 2) };
        await WriteShardAsync(shards.Append("shard-00000.bin"), images);

        var set = await ValidationImages.LoadAsync(_bed.Store, shards, 5, Scratch(), NullLogger.Instance, CancellationToken.None);

        Assert.Equal([images[0].Pixels, images[1].Pixels, images[0].Pixels, images[1].Pixels, images[0].Pixels], set.Images.Select(i => i.Pixels));
    }

    [Fact]
    public async Task A_dataset_folder_without_shards_fails_naming_it()
    {
        var shards = Shards;

        var error = await Assert.ThrowsAsync<StageInputException>(() =>
            ValidationImages.LoadAsync(_bed.Store, shards, 4, Scratch(), NullLogger.Instance, CancellationToken.None));

        Assert.Contains(shards.AbsoluteUri, error.Message);
        Assert.Contains("no shard-*.bin", error.Message);
    }

    [Fact]
    public async Task The_runner_checks_parity_on_the_staged_images()
    {
        var shards = Shards;
        await WriteShardAsync(shards.Append("shard-00000.bin"), [.. Enumerable.Range(0, 6).Select(i => Image(40 + 4 * i, 36, seed: 10 + i))]);
        var config = TestBackbones.Pico(imgSize: 28);
        using var model = TestBackbones.Create(config, seed: 3);
        await _bed.StoreBackboneAsync(model);

        var result = await _bed.RunAsync(_bed.Command(ExportTestBed.Spec(config), validationDataset: shards));

        Assert.InRange(result.Completed.MaxAbsError, 0, 1e-4);
        Assert.Contains(_bed.Progress, p => p.Fraction == 1.0);
    }

    public void Dispose() => _bed.Dispose();

    private string Scratch() => Directory.CreateDirectory(_bed.Temp.Combine("scratch", Guid.NewGuid().ToString("N"))).FullName;

    private static DecodedImage Image(int width, int height, int seed)
    {
        var rgb = new byte[width * height * 3];
        new Random(seed).NextBytes(rgb);
        return new DecodedImage(rgb, width, height, channels: 3);
    }

    private async Task WriteShardAsync(Uri uri, IReadOnlyList<DecodedImage> images)
    {
        var folder = _bed.Temp.Combine(Guid.NewGuid().ToString("N"));
        await StagedDataset.WriteAsync(folder, new InMemoryImageSource(images), imagesPerShard: images.Count);
        await _bed.Store.PutFileAsync(uri, Path.Combine(folder, ShardFormat.FileName(0)), CancellationToken.None);
    }
}
