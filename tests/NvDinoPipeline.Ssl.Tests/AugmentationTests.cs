using NvDinoPipeline.Ssl.Augmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class ImageOpsTests
{
    private static readonly System.Text.Json.JsonElement Ops = Fixture.Load("image_ops.json");

    private static Tensor Image() => Fixture.ToTensor(Ops.GetProperty("image"));

    [Fact]
    public void Colour_operations_match_torchvision()
    {
        using var scope = torch.NewDisposeScope();
        var image = Image();
        Fixture.AssertClose(Ops.GetProperty("brightness_1_3"), ImageOps.AdjustBrightness(image, 1.3));
        Fixture.AssertClose(Ops.GetProperty("contrast_0_7"), ImageOps.AdjustContrast(image, 0.7));
        Fixture.AssertClose(Ops.GetProperty("saturation_1_5"), ImageOps.AdjustSaturation(image, 1.5));
        Fixture.AssertClose(Ops.GetProperty("hue_0_08"), ImageOps.AdjustHue(image, 0.08));
        Fixture.AssertClose(Ops.GetProperty("hue_minus_0_3"), ImageOps.AdjustHue(image, -0.3));
        Fixture.AssertClose(Ops.GetProperty("grayscale3"), ImageOps.Grayscale(image));
    }

    [Fact]
    public void Blur_solarize_flip_and_normalize_match_torchvision()
    {
        using var scope = torch.NewDisposeScope();
        var image = Image();
        Fixture.AssertClose(Ops.GetProperty("blur_9_1_3"), ImageOps.GaussianBlur(image, 9, 1.3));
        Fixture.AssertClose(Ops.GetProperty("solarize_128"), ImageOps.Solarize(image, 128.0 / 255.0));
        Fixture.AssertClose(Ops.GetProperty("hflip"), ImageOps.HorizontalFlip(image));
        Fixture.AssertClose(Ops.GetProperty("normalize"), ImageOps.Normalize(image, ImageOps.ImageNetMean, ImageOps.ImageNetStd));
    }

    [Fact]
    public void Bicubic_resized_crop_matches_torchvision_with_antialiasing()
    {
        using var scope = torch.NewDisposeScope();
        var image = Image();
        Fixture.AssertClose(Ops.GetProperty("resized_crop_down"), ImageOps.ResizedCrop(image, new CropBox(2, 1, 8, 7), 6), 1e-4);
        Fixture.AssertClose(Ops.GetProperty("resized_crop_up"), ImageOps.ResizedCrop(image, new CropBox(3, 2, 5, 6), 16), 1e-4);
    }

    [Fact]
    public void Grayscale_makes_the_three_channels_equal()
    {
        using var scope = torch.NewDisposeScope();
        var gray = ImageOps.Grayscale(torch.rand(3, 5, 5));
        Assert.True(gray[0].SameAs(gray[1]) && gray[1].SameAs(gray[2]));
    }

    [Fact]
    public void Solarize_inverts_exactly_the_values_at_or_above_the_threshold()
    {
        using var scope = torch.NewDisposeScope();
        var image = torch.tensor(new float[] { 0.1f, 0.4f, 0.5f, 0.9f }).view(1, 2, 2);
        var result = ImageOps.Solarize(image, 0.5).flatten().data<float>().ToArray();
        Assert.Equal(new[] { 0.1f, 0.4f, 0.5f, 1 - 0.9f }, result, new FloatComparer(1e-6f));
    }

    [Fact]
    public void Flip_mirrors_columns()
    {
        using var scope = torch.NewDisposeScope();
        var image = torch.arange(6, dtype: ScalarType.Float32).view(1, 2, 3);
        Assert.Equal(new float[] { 2, 1, 0, 5, 4, 3 }, ImageOps.HorizontalFlip(image).flatten().data<float>().ToArray());
    }

    [Fact]
    public void Random_resized_crop_box_covers_the_requested_area_share_and_aspect()
    {
        var random = new Random(1);
        for (var i = 0; i < 200; i++)
        {
            var box = ImageOps.RandomResizedCropBox(60, 80, (0.32, 1.0), (3.0 / 4, 4.0 / 3), random);
            Assert.InRange(box.Top, 0, 60 - box.Height);
            Assert.InRange(box.Left, 0, 80 - box.Width);
            var share = (double)box.Height * box.Width / (60 * 80);
            Assert.InRange(share, 0.30, 1.0);
            Assert.InRange((double)box.Width / box.Height, 0.70, 1.40);
        }
    }

    [Fact]
    public void Grayscale_and_byte_images_become_three_channel_floats()
    {
        using var scope = torch.NewDisposeScope();
        var gray = ImageOps.ToRgb(torch.full(new long[] { 4, 5 }, 255, dtype: ScalarType.Byte));
        Assert.Equal(new long[] { 3, 4, 5 }, gray.shape);
        Assert.Equal(ScalarType.Float32, gray.dtype);
        Assert.Equal(1.0f, gray.min().item<float>());
        var ex = Assert.Throws<ArgumentException>(() => ImageOps.ToRgb(torch.rand(2, 4, 4)));
        Assert.Equal("image", ex.ParamName);
    }

    private sealed class FloatComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(float obj) => 0;
    }
}

public sealed class MultiCropAugmentationTests
{
    private static readonly MultiCropOptions Small = new()
    {
        GlobalCropsSize = 28,
        LocalCropsSize = 14,
        LocalCropsNumber = 3,
    };

    [Fact]
    public void Produces_two_global_and_n_local_normalised_crops_of_the_configured_sizes()
    {
        using var scope = torch.NewDisposeScope();
        var augmentation = new MultiCropAugmentation(Small);
        using var crops = augmentation.Apply(torch.rand(3, 40, 50), new Random(0));
        Assert.Equal(2, crops.GlobalCrops.Count);
        Assert.Equal(3, crops.LocalCrops.Count);
        Assert.All(crops.GlobalCrops, c => Assert.Equal(new long[] { 3, 28, 28 }, c.shape));
        Assert.All(crops.LocalCrops, c => Assert.Equal(new long[] { 3, 14, 14 }, c.shape));
        // Undoing the ImageNet normalisation gives pixels in [0, 1].
        var mean = torch.tensor(ImageOps.ImageNetMean.ToArray()).view(3, 1, 1);
        var std = torch.tensor(ImageOps.ImageNetStd.ToArray()).view(3, 1, 1);
        foreach (var crop in crops.GlobalCrops.Concat(crops.LocalCrops))
        {
            var pixels = crop * std + mean;
            Assert.InRange(pixels.min().item<float>(), -1e-5f, 1f);
            Assert.InRange(pixels.max().item<float>(), 0f, 1f + 1e-5f);
        }
    }

    [Fact]
    public void Same_seed_gives_identical_crops_and_another_seed_different_ones()
    {
        using var scope = torch.NewDisposeScope();
        var augmentation = new MultiCropAugmentation(Small);
        var image = torch.rand(3, 40, 50, generator: new Generator(8));
        using var a = augmentation.Apply(image, new Random(42));
        using var b = augmentation.Apply(image, new Random(42));
        using var c = augmentation.Apply(image, new Random(43));
        Assert.All(a.GlobalCrops.Zip(b.GlobalCrops), p => Assert.True(p.First.SameAs(p.Second)));
        Assert.All(a.LocalCrops.Zip(b.LocalCrops), p => Assert.True(p.First.SameAs(p.Second)));
        Assert.False(a.GlobalCrops[0].SameAs(c.GlobalCrops[0]));
    }

    [Fact]
    public void Grayscale_images_are_accepted()
    {
        using var scope = torch.NewDisposeScope();
        var augmentation = new MultiCropAugmentation(Small);
        using var crops = augmentation.Apply(torch.rand(1, 28, 28), new Random(3));
        Assert.Equal(new long[] { 3, 28, 28 }, crops.GlobalCrops[0].shape);
        using var fromByte = augmentation.Apply(torch.randint(0, 256, new long[] { 28, 28 }, dtype: ScalarType.Byte), new Random(3));
        Assert.Equal(new long[] { 3, 14, 14 }, fromByte.LocalCrops[0].shape);
    }

    [Fact]
    public void Without_any_random_op_a_crop_of_the_whole_image_is_only_resized_and_normalised()
    {
        using var scope = torch.NewDisposeScope();
        var plain = Small with
        {
            GlobalCropsScale = (1.0, 1.0),
            CropRatio = (1.0, 1.0),
            HorizontalFlipProbability = 0,
            ColorJitterProbability = 0,
            GrayscaleProbability = 0,
            GlobalCrop1BlurProbability = 0,
            GlobalCrop2BlurProbability = 0,
            GlobalCrop2SolarizeProbability = 0,
            LocalCropsNumber = 0,
        };
        var image = torch.rand(3, 28, 28);
        using var crops = new MultiCropAugmentation(plain).Apply(image, new Random(0));
        var expected = ImageOps.Normalize(image, ImageOps.ImageNetMean, ImageOps.ImageNetStd);
        Assert.True(crops.GlobalCrops[0].allclose(expected, rtol: 0, atol: 1e-5));
        Assert.True(crops.GlobalCrops[1].allclose(expected, rtol: 0, atol: 1e-5));
        Assert.Empty(crops.LocalCrops);
    }

    [Fact]
    public void Certain_solarisation_inverts_the_second_global_crop_only()
    {
        using var scope = torch.NewDisposeScope();
        var options = Small with
        {
            GlobalCropsScale = (1.0, 1.0),
            CropRatio = (1.0, 1.0),
            HorizontalFlipProbability = 0,
            ColorJitterProbability = 0,
            GrayscaleProbability = 0,
            GlobalCrop1BlurProbability = 0,
            GlobalCrop2BlurProbability = 0,
            GlobalCrop2SolarizeProbability = 1,
            LocalCropsNumber = 0,
            Mean = [0f, 0f, 0f],
            Std = [1f, 1f, 1f],
        };
        var image = torch.full(new long[] { 3, 28, 28 }, 0.9f);
        using var crops = new MultiCropAugmentation(options).Apply(image, new Random(0));
        Assert.Equal(0.9f, crops.GlobalCrops[0].mean().item<float>(), 4);
        Assert.Equal(0.1f, crops.GlobalCrops[1].mean().item<float>(), 4);
    }

    [Fact]
    public void Batches_stack_crop_major_like_DINOv2_collate()
    {
        using var scope = torch.NewDisposeScope();
        var augmentation = new MultiCropAugmentation(Small);
        var batch = Enumerable.Range(0, 2).Select(i => augmentation.Apply(torch.rand(3, 32, 32), new Random(i))).ToList();
        var (global, local) = MultiCrops.Stack(batch);
        Assert.Equal(new long[] { 4, 3, 28, 28 }, global.shape);
        Assert.Equal(new long[] { 6, 3, 14, 14 }, local!.shape);
        Assert.True(global[1].SameAs(batch[1].GlobalCrops[0]));
        Assert.True(global[2].SameAs(batch[0].GlobalCrops[1]));
        Assert.True(local[5].SameAs(batch[1].LocalCrops[2]));
        batch.ForEach(b => b.Dispose());
    }

    [Fact]
    public void Rejects_invalid_options_naming_the_setting()
    {
        var ex = Assert.Throws<ArgumentException>(() => new MultiCropAugmentation(Small with { GlobalCrop2SolarizeProbability = 1.5 }));
        Assert.Contains(nameof(MultiCropOptions.GlobalCrop2SolarizeProbability), ex.Message);
        ex = Assert.Throws<ArgumentException>(() => new MultiCropAugmentation(Small with { LocalCropsSize = 3 }));
        Assert.Contains(nameof(MultiCropOptions.LocalCropsSize), ex.Message);
    }
}
