using System.Diagnostics;
using System.Formats.Tar;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Staging.Tests;

/// <summary>A tar.gz of 1 GiB of zeros in one entry followed by one real image, made once: about 1 MB on disk.</summary>
public sealed class ZeroBombFixture : IDisposable
{
    public const long ZeroBytes = 1L << 30;

    private readonly TempDirectory _folder = new("nvdino-bomb");

    public ZeroBombFixture()
    {
        Image = ImageFiles.Png(16, 16, seed: 7);
        Path = TestArchive.WriteZeroBomb(_folder.Combine("bomb.tar.gz"), ZeroBytes, ("after/real.png", Image));
    }

    public string Path { get; }

    public string Folder => _folder.Path;

    public byte[] Image { get; }

    public long Size => new FileInfo(Path).Length;

    public void Dispose() => _folder.Dispose();
}

public sealed class HostileSourceTests(ZeroBombFixture bomb) : IClassFixture<ZeroBombFixture>, IDisposable
{
    private readonly StagingTestBed _bed = StagingTestBed.OnFiles(readableFolder: bomb.Folder);

    public void Dispose() => _bed.Dispose();

    private static TestArchive ThreeGoodImages() => new TestArchive()
        .File("good/0.png", ImageFiles.Png(12, 12, seed: 0))
        .File("good/1.png", ImageFiles.Png(12, 12, seed: 1))
        .File("good/2.bmp", ImageFiles.Bmp(12, 12, seed: 2));

    [Fact]
    public async Task Corrupt_gzip_data_fails_the_job_saying_the_gzip_is_invalid()
    {
        var path = Path.Combine(_bed.Inputs, "corrupt.tar.gz");
        // A gzip header, then a deflate block of the reserved type 3: no inflater accepts it.
        File.WriteAllBytes(path, [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03, 0x07, 0xFF, 0xFF, 0x00, 0x12, 0x34]);
        var command = _bed.Command(new Uri(path));

        var failure = await _bed.StageFailsAsync(command);

        Assert.Contains(path, failure.Message);
        Assert.Contains("gzip", failure.Message);
    }

    [Fact]
    public async Task Gzip_corrupted_in_the_middle_fails_the_job_and_leaves_nothing_behind()
    {
        var path = ThreeGoodImages().File("more/3.bmp", ImageFiles.Bmp(200, 200, seed: 3)).WriteTarGz(Path.Combine(_bed.Inputs, "damaged.tar.gz"));
        var bytes = File.ReadAllBytes(path);
        for (var i = bytes.Length / 2; i < bytes.Length / 2 + 64; i++)
        {
            bytes[i] ^= 0x5A;
        }
        File.WriteAllBytes(path, bytes);
        var command = _bed.Command(new Uri(path));

        var failure = await _bed.StageFailsAsync(command);

        Assert.Contains(path, failure.Message);
        Assert.Empty(await _bed.ListAsync(new Uri(command.OutputUri, "shards/")));
    }

    [Fact]
    public async Task A_tar_cut_inside_an_entry_fails_the_job_as_truncated()
    {
        var path = ThreeGoodImages().File("big.bmp", ImageFiles.Bmp(100, 100, seed: 9)).WriteTar(Path.Combine(_bed.Inputs, "cut.tar"));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 20_000)]);

        var failure = await _bed.StageFailsAsync(_bed.Command(new Uri(path)));

        Assert.Contains("truncated", failure.Message);
        Assert.Contains("big.bmp", failure.Message);
    }

    [Fact]
    public async Task A_tar_gz_cut_short_fails_the_job()
    {
        var path = ThreeGoodImages().File("big.bmp", ImageFiles.Bmp(100, 100, seed: 9)).WriteTarGz(Path.Combine(_bed.Inputs, "cut.tar.gz"));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length * 3 / 4)]);

        var failure = await _bed.StageFailsAsync(_bed.Command(new Uri(path)));

        Assert.Contains(path, failure.Message);
        Assert.Matches("truncated|gzip", failure.Message);
    }

    [Fact]
    public async Task A_tar_gz_missing_its_gzip_trailer_fails_the_job_as_truncated()
    {
        // Cut exactly where the deflate data ends: the inflater alone would take this for a clean end.
        var path = ThreeGoodImages().WriteTarGz(Path.Combine(_bed.Inputs, "no-trailer.tar.gz"));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^8]);

        var failure = await _bed.StageFailsAsync(_bed.Command(new Uri(path)));

        Assert.Contains("truncated", failure.Message);
        Assert.Contains("trailer", failure.Message);
    }

    [Fact]
    public async Task A_tar_gz_whose_checksum_does_not_match_fails_the_job()
    {
        var path = ThreeGoodImages().WriteTarGz(Path.Combine(_bed.Inputs, "bad-crc.tar.gz"));
        var bytes = File.ReadAllBytes(path);
        bytes[^6] ^= 0xFF;
        File.WriteAllBytes(path, bytes);

        var failure = await _bed.StageFailsAsync(_bed.Command(new Uri(path)));

        Assert.Contains("not valid gzip data", failure.Message);
    }

    [Fact]
    public async Task Entries_with_dot_dot_segments_are_skipped_and_nothing_lands_outside_the_job_folder()
    {
        var marker = Guid.NewGuid().ToString("N");
        var path = ThreeGoodImages()
            .File($"../../../escaped-{marker}.png", ImageFiles.Png(8, 8, seed: 10))
            .File($"good/../../escaped2-{marker}.png", ImageFiles.Png(8, 8, seed: 11))
            .File($"..\\..\\escaped3-{marker}.png", ImageFiles.Png(8, 8, seed: 12))
            .WriteTarGz(Path.Combine(_bed.Inputs, "dotdot.tar.gz"));
        var before = _bed.AllFiles();
        var command = _bed.Command(new Uri(path));

        var staged = await _bed.StageAsync(command);

        Assert.Equal(3, staged.ImageCount);
        Assert.Equal(3, staged.SkippedCount);
        var report = await _bed.JsonAsync(new Uri(command.OutputUri, "staging-report.json"));
        Assert.Equal(3, report.GetProperty("skippedByReason").GetProperty("unsafe_path").GetInt32());
        Assert.Contains("'..'", DatasetStagingRunnerTests.Single(report.GetProperty("skipped"), $"../../../escaped-{marker}.png").GetProperty("detail").GetString());
        AssertNothingOutsideJobFolder(before, command);
        Assert.Empty(Directory.EnumerateFiles(Path.GetTempPath(), $"*{marker}*", SearchOption.TopDirectoryOnly));
    }

    [Fact]
    public async Task Entries_with_absolute_paths_are_skipped_and_never_written()
    {
        var target = Path.Combine(Path.GetTempPath(), $"nvdino-absolute-{Guid.NewGuid():N}.png");
        var path = ThreeGoodImages()
            .File(target, ImageFiles.Png(8, 8, seed: 20))
            .File("C:/Windows/evil.png", ImageFiles.Png(8, 8, seed: 21))
            .WriteTar(Path.Combine(_bed.Inputs, "absolute.tar"));
        var before = _bed.AllFiles();
        var command = _bed.Command(new Uri(path));

        var staged = await _bed.StageAsync(command);

        Assert.Equal(3, staged.ImageCount);
        Assert.Equal(2, staged.SkippedCount);
        var report = await _bed.JsonAsync(new Uri(command.OutputUri, "staging-report.json"));
        Assert.Contains("absolute", DatasetStagingRunnerTests.Single(report.GetProperty("skipped"), target).GetProperty("detail").GetString());
        Assert.False(File.Exists(target));
        AssertNothingOutsideJobFolder(before, command);
    }

    [Fact]
    public async Task Symbolic_and_hard_links_are_skipped_even_when_a_later_entry_writes_through_them()
    {
        var marker = Guid.NewGuid().ToString("N");
        var path = ThreeGoodImages()
            .SymbolicLink("passwd.png", "../../../../../../etc/passwd")
            .SymbolicLink("tmp-link", Path.GetTempPath())
            .File($"tmp-link/through-{marker}.png", ImageFiles.Png(8, 8, seed: 30))
            .HardLink("hard.png", "/etc/shadow")
            .HardLink("hard-inside.png", "good/0.png")
            .WriteTarGz(Path.Combine(_bed.Inputs, "links.tar.gz"));
        var before = _bed.AllFiles();
        var command = _bed.Command(new Uri(path));

        var staged = await _bed.StageAsync(command);

        // The file "through" the link is an ordinary entry with that name: nothing is ever written at its path.
        Assert.Equal(4, staged.ImageCount);
        Assert.Equal(4, staged.SkippedCount);
        var manifest = await _bed.ManifestAsync(staged);
        Assert.Contains(manifest, m => m.GetProperty("path").GetString() == $"tmp-link/through-{marker}.png");
        Assert.DoesNotContain(manifest, m => m.GetProperty("path").GetString()!.Contains("passwd") || m.GetProperty("path").GetString()!.Contains("hard"));
        var report = await _bed.JsonAsync(new Uri(command.OutputUri, "staging-report.json"));
        Assert.Equal(4, report.GetProperty("skippedByReason").GetProperty("link").GetInt32());
        Assert.Empty(Directory.EnumerateFiles(Path.GetTempPath(), $"*{marker}*", SearchOption.TopDirectoryOnly));
        AssertNothingOutsideJobFolder(before, command);
    }

    [Fact]
    public async Task Devices_and_fifos_in_an_archive_are_skipped_as_special_files()
    {
        var path = ThreeGoodImages()
            .Special("dev/zero.png", TarEntryType.CharacterDevice)
            .Special("dev/sda.png", TarEntryType.BlockDevice)
            .Special("pipe.png", TarEntryType.Fifo)
            .WriteTar(Path.Combine(_bed.Inputs, "devices.tar"));

        var staged = await _bed.StageAsync(_bed.Command(new Uri(path)));

        Assert.Equal(3, staged.ImageCount);
        Assert.Equal(3, staged.SkippedCount);
        var statistics = await _bed.JsonAsync(staged.StatisticsUri);
        Assert.Equal(3, statistics.GetProperty("skippedByReason").GetProperty("special_file").GetInt32());
    }

    [Fact]
    public async Task A_decompression_bomb_fails_early_on_the_compression_ratio_cap()
    {
        var before = _bed.AllFiles();
        var command = _bed.Command(new Uri(bomb.Path));
        var clock = Stopwatch.StartNew();

        var failure = await _bed.StageFailsAsync(command);

        Assert.Contains("decompression bomb", failure.Message);
        Assert.Contains("MaxCompressionRatio", failure.Message);
        // It stops a little after the 64 MiB grace, not after the whole gigabyte.
        var unpacked = long.Parse(System.Text.RegularExpressions.Regex.Match(failure.Message, @"unpacked to (\d+)").Groups[1].Value);
        Assert.InRange(unpacked, _bed.Options.CompressionRatioGraceBytes, 4 * _bed.Options.CompressionRatioGraceBytes);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        AssertNothingOutsideJobFolder(before, command);
        Assert.Empty(await _bed.ListAsync(command.OutputUri));
    }

    [Fact]
    public async Task Declared_sizes_beyond_the_unpacked_cap_fail_the_job_before_the_data_is_read()
    {
        using var bed = StagingTestBed.OnFiles(o => o.MaxUncompressedBytes = 100L << 20, bomb.Folder);
        var command = bed.Command(new Uri(bomb.Path));
        var clock = Stopwatch.StartNew();

        var failure = await bed.StageFailsAsync(command);

        Assert.Contains("declares more than 104857600 unpacked bytes by entry 'zeros.png'", failure.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Too_many_entries_fail_the_job_naming_the_cap()
    {
        using var bed = StagingTestBed.OnFiles(o => o.MaxEntries = 10);
        var archive = new TestArchive();
        for (var i = 0; i < 20; i++)
        {
            archive.File($"{i}.png", ImageFiles.Png(4, 4, seed: i));
        }
        var path = archive.WriteTarGz(Path.Combine(bed.Inputs, "many.tar.gz"));

        var failure = await bed.StageFailsAsync(bed.Command(new Uri(path)));

        Assert.Contains("more than 10 entries", failure.Message);
        Assert.Contains("Staging:MaxEntries", failure.Message);
    }

    [Fact]
    public async Task An_image_claiming_100000_by_100000_pixels_is_skipped_before_decoding()
    {
        var path = ThreeGoodImages().File("huge.png", ImageFiles.PngClaiming(100_000, 100_000)).WriteTarGz(Path.Combine(_bed.Inputs, "huge.tar.gz"));
        var command = _bed.Command(new Uri(path));

        var staged = await _bed.StageAsync(command);

        Assert.Equal(3, staged.ImageCount);
        Assert.Equal(1, staged.SkippedCount);
        var report = await _bed.JsonAsync(new Uri(command.OutputUri, "staging-report.json"));
        var huge = DatasetStagingRunnerTests.Single(report.GetProperty("skipped"), "huge.png");
        Assert.Equal("absurd_dimensions", huge.GetProperty("reason").GetString());
        Assert.Contains("100000×100000", huge.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_source_without_one_usable_image_fails_the_job_and_keeps_the_report()
    {
        var corruptPng = ImageFiles.Png(20, 20, seed: 1);
        Array.Fill(corruptPng, (byte)0x55, 45, corruptPng.Length - 45 - 12);
        var path = new TestArchive()
            .File("README.md", "# not images"u8.ToArray())
            .File("photo.jpg", "plain text pretending"u8.ToArray())
            .File("corrupt.png", corruptPng)
            .File("empty.png", [])
            .WriteTarGz(Path.Combine(_bed.Inputs, "nothing.tar.gz"));
        var command = _bed.Command(new Uri(path));

        var failure = await _bed.StageFailsAsync(command);

        Assert.Contains($"Source '{new Uri(path)}' has no usable image", failure.Message);
        Assert.Contains("3 not_an_image", failure.Message);
        Assert.Contains("1 corrupt", failure.Message);
        var report = await _bed.JsonAsync(new Uri(command.OutputUri, "staging-report.json"));
        Assert.Equal(4, report.GetProperty("skippedCount").GetInt32());
        Assert.Empty(await _bed.ListAsync(new Uri(command.OutputUri, "shards/")));
    }

    private void AssertNothingOutsideJobFolder(HashSet<string> before, StageDataset command)
    {
        var jobFolder = Path.GetRelativePath(_bed.Temp.Path, command.OutputUri.LocalPath).TrimEnd('/') + "/";
        var added = _bed.AllFiles().Except(before).ToList();
        Assert.All(added, file => Assert.True(
            file.StartsWith(jobFolder, StringComparison.Ordinal) || file.StartsWith("artifacts/_cache/staging/", StringComparison.Ordinal),
            $"'{file}' was written outside the job folder {jobFolder}"));
    }
}
