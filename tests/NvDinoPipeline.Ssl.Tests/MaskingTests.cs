using NvDinoPipeline.Ssl.Masking;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class MaskingGeneratorTests
{
    // The trainer's generator for 224-pixel crops with patch 14: a 16×16 grid, at most half of it per block.
    private static MaskingGenerator Grid16() => new(16, 16, maxNumPatches: 0.5 * 16 * 16);

    [Fact]
    public void Never_masks_more_than_requested_and_usually_gets_close()
    {
        var generator = Grid16();
        var random = new Random(11);
        var shortfalls = new List<int>();
        foreach (var requested in new[] { 4, 25, 51, 77, 102, 128 })
        {
            for (var i = 0; i < 30; i++)
            {
                var count = generator.Generate(requested, random).Count(m => m);
                Assert.InRange(count, 1, requested);
                shortfalls.Add(requested - count);
            }
        }
        Assert.True(shortfalls.Average() < 3.0, $"mean shortfall {shortfalls.Average()}");
    }

    [Fact]
    public void Masks_are_blocks_not_scattered_patches()
    {
        var generator = Grid16();
        var random = new Random(5);
        double blockBoundary = 0, scatteredBoundary = 0;
        for (var i = 0; i < 40; i++)
        {
            var mask = generator.Generate(64, random);
            blockBoundary += Boundary(mask, 16);
            var count = mask.Count(m => m);
            var scattered = new bool[256];
            foreach (var index in Enumerable.Range(0, 256).OrderBy(_ => random.Next()).Take(count))
                scattered[index] = true;
            scatteredBoundary += Boundary(scattered, 16);
        }
        // Rectangles expose few masked/unmasked edges; the same number of scattered patches exposes many.
        Assert.True(blockBoundary < 0.5 * scatteredBoundary, $"block boundary {blockBoundary}, scattered {scatteredBoundary}");
    }

    [Fact]
    public void Same_seed_gives_the_same_mask()
    {
        var a = Grid16().Generate(80, new Random(123));
        var b = Grid16().Generate(80, new Random(123));
        var c = Grid16().Generate(80, new Random(124));
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Rejects_a_request_larger_than_the_grid()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Grid16().Generate(257, new Random(0)));
        Assert.Equal("numMaskingPatches", ex.ParamName);
    }

    private static int Boundary(bool[] mask, int width)
    {
        var edges = 0;
        for (var i = 0; i < mask.Length; i++)
        {
            var (r, c) = (i / width, i % width);
            if (c + 1 < width && mask[i] != mask[i + 1]) edges++;
            if (r + 1 < mask.Length / width && mask[i] != mask[i + width]) edges++;
        }
        return edges;
    }
}

public sealed class MaskCollatorTests
{
    [Fact]
    public void Masks_the_requested_share_of_samples_within_the_ratio_bounds()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new MaskingGenerator(16, 16);
        for (var seed = 0; seed < 10; seed++)
        {
            using var masks = MaskCollator.Collate(16, generator, 0.1, 0.5, 0.5, new Random(seed));
            var counts = masks.Masks.sum(1).data<long>().ToArray();
            Assert.Equal(8, counts.Count(c => c == 0));
            Assert.All(counts.Where(c => c > 0), c => Assert.InRange(c, 1, (long)(256 * 0.5)));
            Assert.True(counts.Sum() <= masks.Upperbound);
            // Bins spread the ratios: the least and most masked samples are far apart.
            var masked = counts.Where(c => c > 0).OrderBy(c => c).ToArray();
            Assert.True(masked[^1] - masked[0] > 0.2 * 256, $"counts {string.Join(", ", masked)}");
            Assert.True(masked[0] <= (long)(256 * (0.1 + 0.4 / 8)), $"smallest count {masked[0]}");
        }
    }

    [Fact]
    public void Indices_and_weights_describe_the_masks()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new MaskingGenerator(8, 8);
        using var masks = MaskCollator.Collate(6, generator, 0.1, 0.5, 0.5, new Random(9));
        Assert.Equal(new long[] { 6, 64 }, masks.Masks.shape);
        Assert.Equal(masks.MaskedPatchCount, (int)masks.Masks.sum().item<long>());
        Assert.Equal(masks.MaskedPatchCount, (int)masks.MaskIndices.shape[0]);
        Assert.True(masks.Masks.flatten().index_select(0, masks.MaskIndices).all().item<bool>());
        // Every masked image's patches weigh 1 in total.
        var maskedImages = (masks.Masks.sum(1) > 0).sum().item<long>();
        Assert.Equal(maskedImages, masks.MasksWeight.sum().item<float>(), 4);
    }

    [Fact]
    public void Same_seed_gives_the_same_batch_masks()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new MaskingGenerator(8, 8);
        using var a = MaskCollator.Collate(8, generator, 0.1, 0.5, 0.5, new Random(4));
        using var b = MaskCollator.Collate(8, generator, 0.1, 0.5, 0.5, new Random(4));
        using var c = MaskCollator.Collate(8, generator, 0.1, 0.5, 0.5, new Random(5));
        Assert.True(a.Masks.SameAs(b.Masks));
        Assert.False(a.Masks.SameAs(c.Masks));
    }

    [Fact]
    public void Rejects_an_inverted_ratio_range()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => MaskCollator.Collate(4, new MaskingGenerator(4, 4), 0.5, 0.1, 0.5, new Random(0)));
        Assert.Contains("[0.5, 0.1]", ex.Message);
    }
}
