using System.Security.Cryptography;
using System.Text.Json;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Staging.Images;
using NvDinoPipeline.Staging.Shards;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Staging.Tests;

public sealed class DatasetStagingRunnerTests : IDisposable
{
    private readonly StagingTestBed _bed = StagingTestBed.OnFiles();

    public void Dispose() => _bed.Dispose();

    /// <summary>PNGs and BMPs of assorted sizes in nested folders; entries 0, 5 and 9 are larger than MaxSide (32).</summary>
    internal static List<(string Path, byte[] Bytes, int Width, int Height, int Seed)> SampleImages()
    {
        var images = new List<(string, byte[], int, int, int)>();
        for (var i = 0; i < 12; i++)
        {
            var (width, height) = i % 5 == 0 ? (64, 40) : (8 + i, 6 + i % 4);
            var path = $"{(i % 3 == 0 ? "" : $"class{i % 3}/")}{(i % 4 == 0 ? "deep/er/" : "")}png-{i:D2}.png";
            images.Add((path, ImageFiles.Png(width, height, seed: i), width, height, i));
        }
        for (var i = 12; i < 18; i++)
        {
            var (width, height) = i == 14 ? (20, 90) : (5 + i, 7);
            images.Add(($"bmp/bmp-{i:D2}.bmp", ImageFiles.Bmp(width, height, seed: i), width, height, i));
        }
        return images;
    }

    internal static TestArchive ArchiveOf(IEnumerable<(string Path, byte[] Bytes, int Width, int Height, int Seed)> images)
    {
        var archive = new TestArchive().Directory("class1/");
        foreach (var image in images)
        {
            archive.File(image.Path, image.Bytes);
        }
        return archive;
    }

    [Fact]
    public async Task Stages_a_tar_gz_of_png_and_bmp_images_with_their_hashes_sizes_and_pixels()
    {
        var images = SampleImages();
        var truncated = ImageFiles.Png(30, 30, seed: 99)[..200];
        var archive = ArchiveOf(images)
            .File("copies/png-01-again.png", images[1].Bytes)
            .File("README.txt", "not an image"u8.ToArray())
            .File("broken/cut.png", truncated)
            .WriteTarGz(Path.Combine(_bed.Inputs, "images.tar.gz"));
        var command = _bed.Command(new Uri(archive));

        var staged = await _bed.StageAsync(command);

        Assert.Equal(images.Count, staged.ImageCount);
        Assert.Equal(1, staged.DuplicateCount);
        Assert.Equal(2, staged.SkippedCount);
        Assert.False(staged.FromCache);
        Assert.Equal(command.JobId, staged.JobId);
        Assert.Equal(new Uri(command.OutputUri, "shards/"), staged.DatasetUri);

        var manifest = await _bed.ManifestAsync(staged);
        Assert.Equal(images.Count, manifest.Count);
        using var shards = await ShardReader.OpenAsync(_bed.Store, staged.DatasetUri, _bed.ScratchRoot, CancellationToken.None);
        Assert.Equal(images.Count, shards.Count);
        for (var i = 0; i < images.Count; i++)
        {
            var (path, bytes, width, height, seed) = images[i];
            var line = manifest[i];
            var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
            Assert.Equal(i, line.GetProperty("index").GetInt32());
            Assert.Equal(path, line.GetProperty("path").GetString());
            Assert.Equal(sha256, line.GetProperty("sha256").GetString());
            Assert.Equal(width, line.GetProperty("width").GetInt32());
            Assert.Equal(height, line.GetProperty("height").GetInt32());
            Assert.Equal(path.EndsWith(".png") ? "png" : "bmp", line.GetProperty("format").GetString());

            var (rgb, stagedWidth, stagedHeight, relativePath, shardSha256) = shards.Read(i);
            Assert.Equal(path, relativePath);
            Assert.Equal(sha256, shardSha256);
            Assert.Equal(ImageResizer.FitWithin(width, height, 32), (stagedWidth, stagedHeight));
            Assert.True(Math.Max(stagedWidth, stagedHeight) <= 32);
            var original = ImageFiles.Pattern(width, height, seed);
            Assert.Equal(ImageResizer.Resize(original, width, height, stagedWidth, stagedHeight), rgb);
        }
        // Independent of the resizer: a small image is stored exactly, and 64×40 halves by averaging 2×2 blocks.
        Assert.Equal(ImageFiles.Pattern(images[1].Width, images[1].Height, seed: 1), shards.Read(1).Rgb);
        var large = ImageFiles.Pattern(64, 40, seed: 0);
        var halved = shards.Read(0);
        Assert.Equal((32, 20), (halved.Width, halved.Height));
        for (var y = 0; y < 20; y++)
        {
            for (var x = 0; x < 32; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    var sum = large[((2 * y) * 64 + 2 * x) * 3 + c] + large[((2 * y) * 64 + 2 * x + 1) * 3 + c]
                        + large[((2 * y + 1) * 64 + 2 * x) * 3 + c] + large[((2 * y + 1) * 64 + 2 * x + 1) * 3 + c];
                    Assert.Equal((sum + 2) / 4, halved.Rgb[(y * 32 + x) * 3 + c]);
                }
            }
        }

        var report = await _bed.JsonAsync(new Uri(command.OutputUri, "staging-report.json"));
        var skipped = report.GetProperty("skipped").EnumerateArray().ToDictionary(s => s.GetProperty("path").GetString()!, s => s.GetProperty("reason").GetString());
        Assert.Equal("not_an_image", skipped["README.txt"]);
        Assert.Equal("truncated", skipped["broken/cut.png"]);
        var duplicate = Assert.Single(report.GetProperty("duplicates").EnumerateArray());
        Assert.Equal("copies/png-01-again.png", duplicate.GetProperty("path").GetString());
        Assert.Equal(images[1].Path, duplicate.GetProperty("duplicateOf").GetString());
    }

    [Fact]
    public async Task Stages_jpeg_photos_close_to_their_encoded_pixels()
    {
        var archive = new TestArchive()
            .File("photos/a.jpg", ImageFiles.Jpeg(20, 30, seed: 1))
            .File("photos/b.jpeg", ImageFiles.Jpeg(30, 20, seed: 2))
            .File("photos/c.JPG", ImageFiles.Jpeg(64, 48, seed: 3))
            .WriteTarGz(Path.Combine(_bed.Inputs, "photos.tar.gz"));

        var staged = await _bed.StageAsync(_bed.Command(new Uri(archive)));

        Assert.Equal(3, staged.ImageCount);
        var manifest = await _bed.ManifestAsync(staged);
        Assert.All(manifest, m => Assert.Equal("jpeg", m.GetProperty("format").GetString()));
        using var shards = await ShardReader.OpenAsync(_bed.Store, staged.DatasetUri, _bed.ScratchRoot, CancellationToken.None);
        Assert.InRange(ImageFiles.MeanAbsoluteError(ImageFiles.Smooth(20, 30, seed: 1), shards.Read(0).Rgb), 0, 3);
        Assert.Equal((32, 24), (shards.Read(2).Width, shards.Read(2).Height));
    }

    [Fact]
    public async Task Statistics_count_sizes_and_give_the_channel_mean_and_std_of_the_staged_pixels()
    {
        var images = SampleImages();
        var archive = ArchiveOf(images).File("notes.txt", "x"u8.ToArray()).WriteTar(Path.Combine(_bed.Inputs, "images.tar"));

        var staged = await _bed.StageAsync(_bed.Command(new Uri(archive)));

        var statistics = await _bed.JsonAsync(staged.StatisticsUri);
        Assert.Equal(images.Count, statistics.GetProperty("imageCount").GetInt32());
        Assert.Equal(1, statistics.GetProperty("skippedByReason").GetProperty("not_an_image").GetInt32());
        Assert.Equal(12, statistics.GetProperty("formats").GetProperty("png").GetInt32());
        Assert.Equal(6, statistics.GetProperty("formats").GetProperty("bmp").GetInt32());
        var histogram = statistics.GetProperty("sizeHistogram").EnumerateArray().ToList();
        Assert.Equal(images.Count, histogram.Sum(b => b.GetProperty("count").GetInt32()));
        var bin64 = histogram.Single(b => b.GetProperty("minLongerSide").GetInt32() == 64);
        Assert.Equal(images.Count(i => Math.Max(i.Width, i.Height) is >= 64 and < 128), bin64.GetProperty("count").GetInt32());
        Assert.Equal(images.Max(i => i.Width), statistics.GetProperty("width").GetProperty("max").GetInt32());

        using var shards = await ShardReader.OpenAsync(_bed.Store, staged.DatasetUri, _bed.ScratchRoot, CancellationToken.None);
        var sums = new double[3];
        var squares = new double[3];
        long pixels = 0;
        for (var i = 0; i < shards.Count; i++)
        {
            var rgb = shards.Read(i).Rgb;
            for (var p = 0; p < rgb.Length; p++)
            {
                sums[p % 3] += rgb[p] / 255.0;
                squares[p % 3] += rgb[p] / 255.0 * (rgb[p] / 255.0);
            }
            pixels += rgb.Length / 3;
        }
        var mean = statistics.GetProperty("channelMean").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var std = statistics.GetProperty("channelStd").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        for (var c = 0; c < 3; c++)
        {
            var expectedMean = sums[c] / pixels;
            Assert.Equal(expectedMean, mean[c], 5);
            Assert.Equal(Math.Sqrt(squares[c] / pixels - expectedMean * expectedMean), std[c], 5);
        }
    }

    [Fact]
    public async Task Stages_a_nested_folder_and_never_follows_its_links()
    {
        var images = SampleImages();
        var folder = Path.Combine(_bed.Inputs, "folder");
        foreach (var (path, bytes, _, _, _) in images)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(folder, path))!);
            File.WriteAllBytes(Path.Combine(folder, path), bytes);
        }
        var outside = Path.Combine(_bed.Inputs, "outside");
        Directory.CreateDirectory(outside);
        File.WriteAllBytes(Path.Combine(outside, "secret.png"), ImageFiles.Png(9, 9, seed: 500));
        File.CreateSymbolicLink(Path.Combine(folder, "linked.png"), Path.Combine(outside, "secret.png"));
        Directory.CreateSymbolicLink(Path.Combine(folder, "linked-folder"), outside);
        File.WriteAllBytes(Path.Combine(folder, "class1", "empty.png"), []);

        var staged = await _bed.StageAsync(_bed.Command(new Uri(folder + "/")));

        Assert.Equal(images.Count, staged.ImageCount);
        Assert.Equal(3, staged.SkippedCount);
        var manifest = await _bed.ManifestAsync(staged);
        Assert.Equal(images.Select(i => i.Path).Order(StringComparer.Ordinal), manifest.Select(m => m.GetProperty("path").GetString()));
        Assert.DoesNotContain(manifest, m => m.GetProperty("path").GetString()!.Contains("secret"));
        var report = await _bed.JsonAsync(new Uri(staged.DatasetUri, "../staging-report.json"));
        Assert.Equal(2, report.GetProperty("skippedByReason").GetProperty("link").GetInt32());
    }

    [Fact]
    public async Task Stages_a_zip_archive_and_skips_its_symbolic_links()
    {
        var images = SampleImages();
        var archive = ArchiveOf(images).SymbolicLink("passwd.png", "/etc/passwd").WriteZip(Path.Combine(_bed.Inputs, "images.zip"));

        var staged = await _bed.StageAsync(_bed.Command(new Uri(archive)));

        Assert.Equal(images.Count, staged.ImageCount);
        Assert.Equal(1, staged.SkippedCount);
        var manifest = await _bed.ManifestAsync(staged);
        Assert.Equal(images.Select(i => Convert.ToHexStringLower(SHA256.HashData(i.Bytes))), manifest.Select(m => m.GetProperty("sha256").GetString()));
    }

    [Fact]
    public async Task Staging_the_same_archive_again_reuses_the_first_staging_until_forced()
    {
        var archive = ArchiveOf(SampleImages()).WriteTarGz(Path.Combine(_bed.Inputs, "images.tar.gz"));
        var first = await _bed.StageAsync(_bed.Command(new Uri(archive)));

        var secondCommand = _bed.Command(new Uri(archive));
        var second = await _bed.StageAsync(secondCommand);

        Assert.True(second.FromCache);
        Assert.Equal(secondCommand.JobId, second.JobId);
        Assert.Equal(first.DatasetUri, second.DatasetUri);
        Assert.Equal(first.ManifestUri, second.ManifestUri);
        Assert.Equal(first.ImageCount, second.ImageCount);
        Assert.Empty(await _bed.ListAsync(secondCommand.OutputUri));

        var forcedCommand = _bed.Command(new Uri(archive), force: true);
        var forced = await _bed.StageAsync(forcedCommand);
        Assert.False(forced.FromCache);
        Assert.Equal(new Uri(forcedCommand.OutputUri, "shards/"), forced.DatasetUri);
        Assert.Equal(first.ImageCount, forced.ImageCount);
    }

    [Fact]
    public async Task A_cached_staging_whose_shards_are_gone_is_staged_again()
    {
        var archive = ArchiveOf(SampleImages()).WriteTarGz(Path.Combine(_bed.Inputs, "images.tar.gz"));
        var first = await _bed.StageAsync(_bed.Command(new Uri(archive)));
        await _bed.Store.DeleteAsync(first.DatasetUri.Append("shard-00000.bin"), CancellationToken.None);

        var again = await _bed.StageAsync(_bed.Command(new Uri(archive)));

        Assert.False(again.FromCache);
        Assert.Equal(first.ImageCount, again.ImageCount);
        using var shards = await ShardReader.OpenAsync(_bed.Store, again.DatasetUri, _bed.ScratchRoot, CancellationToken.None);
        Assert.Equal(first.ImageCount, shards.Count);
    }

    [Fact]
    public async Task A_changed_folder_is_not_taken_from_the_cache()
    {
        var folder = Path.Combine(_bed.Inputs, "folder");
        Directory.CreateDirectory(folder);
        for (var i = 0; i < 5; i++)
        {
            File.WriteAllBytes(Path.Combine(folder, $"{i}.png"), ImageFiles.Png(10, 10, seed: i));
        }
        var first = await _bed.StageAsync(_bed.Command(new Uri(folder)));
        var unchanged = await _bed.StageAsync(_bed.Command(new Uri(folder)));
        File.WriteAllBytes(Path.Combine(folder, "5.png"), ImageFiles.Png(10, 10, seed: 5));

        var changed = await _bed.StageAsync(_bed.Command(new Uri(folder)));

        Assert.Equal(5, first.ImageCount);
        Assert.True(unchanged.FromCache);
        Assert.False(changed.FromCache);
        Assert.Equal(6, changed.ImageCount);
    }

    [Fact]
    public async Task Small_shards_split_the_dataset_and_the_reader_joins_them_in_order()
    {
        using var bed = StagingTestBed.OnFiles(o =>
        {
            o.ShardMaxBytes = 1024 * 1024;
            o.MaxSide = 300;
        });
        var images = Enumerable.Range(0, 40).Select(i => ($"img-{i:D2}.bmp", ImageFiles.Bmp(300, 300, seed: i), 300, 300, i)).ToList();
        var archive = ArchiveOf(images).WriteTarGz(Path.Combine(bed.Inputs, "large.tar.gz"));

        var staged = await bed.StageAsync(bed.Command(new Uri(archive)));

        var shardFiles = (await bed.ListAsync(staged.DatasetUri)).Where(u => u.AbsolutePath.EndsWith(".bin")).ToList();
        Assert.True(shardFiles.Count >= 4, $"expected several 1 MiB shards, got {shardFiles.Count}");
        using var shards = await ShardReader.OpenAsync(bed.Store, staged.DatasetUri, bed.ScratchRoot, CancellationToken.None);
        Assert.Equal(40, shards.Count);
        Assert.Equal(ImageFiles.Pattern(300, 300, 37), shards.Read(37).Rgb);
        Assert.Equal("img-37.bmp", shards.GetInfo(37).RelativePath);
        var dataset = await bed.JsonAsync(staged.DatasetUri.Append("dataset.json"));
        Assert.Equal(40, dataset.GetProperty("shards").EnumerateArray().Sum(s => s.GetProperty("imageCount").GetInt32()));
    }

    [Fact]
    public async Task Reports_bytes_and_files_read_while_it_stages()
    {
        var images = Enumerable.Range(0, 300).Select(i => ($"{i}.bmp", ImageFiles.Bmp(64, 64, seed: i), 64, 64, i)).ToList();
        var archive = ArchiveOf(images).WriteTarGz(Path.Combine(_bed.Inputs, "images.tar.gz"));

        await _bed.StageAsync(_bed.Command(new Uri(archive)));

        var reports = _bed.Progress.Where(p => p.Metrics is not null).ToList();
        Assert.NotEmpty(reports);
        Assert.All(reports, r => Assert.InRange(r.Fraction!.Value, 0, 1));
        Assert.Contains(reports, r => r.Metrics!["bytes_read"] > 0 && r.Metrics["files_read"] > 0);
    }

    [Fact]
    public async Task A_shard_upload_that_fails_fails_the_job_with_the_store_error_and_leaves_no_output()
    {
        _bed.RunnerStore = new FullDiskStore(_bed.Store, failAfterBytes: 2 << 20);
        var images = Enumerable.Range(0, 100).Select(i => ($"{i}.bmp", ImageFiles.Bmp(64, 64, seed: i), 64, 64, i));
        var archive = ArchiveOf(images).WriteTarGz(Path.Combine(_bed.Inputs, "images.tar.gz"));
        var command = _bed.Command(new Uri(archive));

        var failure = await Assert.ThrowsAsync<IOException>(() => _bed.RunAsync(command));

        Assert.Equal("No space left on device", failure.Message);
        Assert.Empty(await _bed.ListAsync(command.OutputUri));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_bed.ScratchOf(command)));
    }

    [Fact]
    public async Task A_missing_source_fails_the_job_naming_it()
    {
        var missing = new Uri(Path.Combine(_bed.Inputs, "nope.tar.gz"));

        var failure = await _bed.StageFailsAsync(_bed.Command(missing));

        Assert.Contains(missing.ToString(), failure.Message);
        Assert.Contains("does not exist", failure.Message);
    }

    [Fact]
    public async Task An_archive_in_an_unsupported_compression_fails_the_job_saying_what_it_is()
    {
        var path = Path.Combine(_bed.Inputs, "images.tar.bz2");
        File.WriteAllBytes(path, [.. "BZh91AY&SY"u8, .. new byte[100]]);

        var failure = await _bed.StageFailsAsync(_bed.Command(new Uri(path)));

        Assert.Contains("bzip2", failure.Message);
        Assert.Contains(".tar.gz, .tar and .zip", failure.Message);
    }

    internal static JsonElement Single(JsonElement array, string path) =>
        array.EnumerateArray().Single(e => e.GetProperty("path").GetString() == path);
}
