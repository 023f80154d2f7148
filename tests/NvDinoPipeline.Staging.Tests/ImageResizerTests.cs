using NvDinoPipeline.Staging.Images;

namespace NvDinoPipeline.Staging.Tests;

public sealed class ImageResizerTests
{
    [Theory]
    [InlineData(1000, 500, 512, 512, 256)]
    [InlineData(500, 1000, 512, 256, 512)]
    [InlineData(300, 200, 512, 300, 200)]
    [InlineData(5000, 3, 512, 512, 1)]
    public void Fits_the_longer_side_and_keeps_the_aspect_ratio(int width, int height, int maxSide, int expectedWidth, int expectedHeight)
    {
        Assert.Equal((expectedWidth, expectedHeight), ImageResizer.FitWithin(width, height, maxSide));
    }

    [Fact]
    public void A_flat_colour_stays_exactly_that_colour_at_any_scale()
    {
        var rgb = new byte[997 * 613 * 3];
        for (var i = 0; i < rgb.Length; i += 3)
        {
            (rgb[i], rgb[i + 1], rgb[i + 2]) = ((byte)200, (byte)13, (byte)77);
        }

        var small = ImageResizer.Resize(rgb, 997, 613, 50, 31);

        Assert.Equal(50 * 31 * 3, small.Length);
        for (var i = 0; i < small.Length; i += 3)
        {
            Assert.Equal((200, 13, 77), (small[i], small[i + 1], small[i + 2]));
        }
    }

    [Fact]
    public void A_horizontal_ramp_scaled_down_is_a_ramp_with_matching_centre_values()
    {
        const int width = 400;
        var rgb = new byte[width * 2 * 3];
        for (var y = 0; y < 2; y++)
        {
            for (var x = 0; x < width; x++)
            {
                rgb[(y * width + x) * 3] = (byte)(x * 255 / (width - 1));
            }
        }

        var small = ImageResizer.Resize(rgb, width, 2, 30, 1);

        for (var x = 0; x < 30; x++)
        {
            // Output pixel x covers source pixels centred on (x + 0.5) * width / 30.
            var centre = (x + 0.5) * width / 30 - 0.5;
            Assert.InRange(small[x * 3], centre * 255 / (width - 1) - 2, centre * 255 / (width - 1) + 2);
            if (x > 0)
            {
                Assert.True(small[x * 3] > small[(x - 1) * 3]);
            }
        }
    }

    [Fact]
    public void Reducing_by_exactly_two_averages_each_two_by_two_block()
    {
        byte[] rgb =
        [
            0, 0, 0, 100, 100, 100,
            50, 50, 50, 250, 250, 250,
        ];

        Assert.Equal([100, 100, 100], ImageResizer.Resize(rgb, 2, 2, 1, 1));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(95)]
    [InlineData(96 * 70_000 + 7)]
    public void Vector_channel_sums_equal_a_plain_loop(int length)
    {
        var rgb = new byte[length - length % 3];
        new Random(length).NextBytes(rgb);
        ulong[] sums = [0, 0, 0], squares = [0, 0, 0];
        for (var i = 0; i < rgb.Length; i++)
        {
            sums[i % 3] += rgb[i];
            squares[i % 3] += (ulong)rgb[i] * rgb[i];
        }

        var fast = NvDinoPipeline.Staging.Output.ChannelSums.Of(rgb);

        Assert.Equal((sums[0], sums[1], sums[2], squares[0], squares[1], squares[2]),
            (fast.Red, fast.Green, fast.Blue, fast.RedSquares, fast.GreenSquares, fast.BlueSquares));
    }
}
