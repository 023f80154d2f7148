using System.Diagnostics;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Staging.Tests;

/// <summary>Measures allocations process-wide, so these tests run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AloneCollection
{
    public const string Name = "Alone";
}

[Collection(AloneCollection.Name)]
public sealed class StreamingTests(ZeroBombFixture bomb) : IClassFixture<ZeroBombFixture>
{
    [Fact]
    public async Task A_gigabyte_entry_streams_past_in_bounded_memory_when_the_ratio_cap_is_lifted()
    {
        using var bed = StagingTestBed.OnFiles(o =>
        {
            o.MaxCompressionRatio = 1e9;
            o.MaxFileBytes = 1 << 20;
        }, bomb.Folder);
        var command = bed.Command(new Uri(bomb.Path));
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);

        var staged = await bed.StageAsync(command);

        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        Assert.Equal(1, staged.ImageCount);
        Assert.Equal(1, staged.SkippedCount);
        var report = await bed.JsonAsync(new Uri(command.OutputUri, "staging-report.json"));
        var zeros = DatasetStagingRunnerTests.Single(report.GetProperty("skipped"), "zeros.png");
        Assert.Equal("too_large", zeros.GetProperty("reason").GetString());
        // The gigabyte was inflated and passed over; what the run allocated is a small fraction of it.
        Assert.True(allocated < 128L << 20, $"allocated {allocated / (1 << 20)} MiB while streaming a 1 GiB entry");
        Assert.True(bed.Progress.Any(p => p.Metrics?["bytes_read"] > 0), "no progress was reported during a long staging");
    }

    [Fact]
    public async Task Cancelling_stops_promptly_and_removes_scratch_and_partial_output()
    {
        using var bed = StagingTestBed.OnFiles();
        bed.RunnerStore = new SlowStore(bed.Store, chunkBytes: 16 * 1024, pause: TimeSpan.FromMilliseconds(10));
        var images = Enumerable.Range(0, 200).Select(i => ($"{i}.bmp", ImageFiles.Bmp(64, 64, seed: i), 64, 64, i));
        var archive = DatasetStagingRunnerTests.ArchiveOf(images).WriteTarGz(Path.Combine(bed.Inputs, "slow.tar.gz"));
        var command = bed.Command(new Uri(archive));
        using var cancel = new CancellationTokenSource();
        var run = bed.RunAsync(command, cancel.Token);
        while (!bed.Progress.Any(p => p.Metrics?["images_staged"] > 0) && !run.IsCompleted)
        {
            await Task.Delay(10);
        }

        var clock = Stopwatch.StartNew();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"stopping took {clock.Elapsed}");
        Assert.Empty(Directory.EnumerateFileSystemEntries(bed.ScratchOf(command)));
        Assert.Empty(await bed.ListAsync(command.OutputUri));
    }
}
