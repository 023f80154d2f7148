using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Training.Tests;

/// <summary>The images an AutoML trial is scored on: held out of its training, a share of every class.</summary>
public sealed class HeldOutSplitTests
{
    private static InMemoryImageSource Images(params string[] paths) =>
        new([.. paths.Select(path => new DecodedImage(new byte[4 * 4 * 3], 4, 4, 3, path))]);

    [Fact]
    public void Each_class_holds_out_its_share_spread_over_its_images_and_the_rest_trains_and_is_the_gallery()
    {
        var paths = Enumerable.Range(0, 8).Select(i => $"cats/{i}.png").Concat(Enumerable.Range(0, 4).Select(i => $"dogs/{i}.png")).Append("loose.png").ToArray();
        var split = HeldOutSplit.Of(Images(paths), 0.25)!;

        Assert.Equal(2, split.Classes);
        Assert.Equal(["cats/3.png", "cats/7.png", "dogs/3.png"], split.HeldOut.Select(i => paths[i]));
        Assert.Empty(split.Train.Intersect(split.HeldOut));
        Assert.Equal(paths.Length - 3, split.Train.Count);
        // The image outside any class folder trains, but votes in no k-NN.
        Assert.Contains(Array.IndexOf(paths, "loose.png"), split.Train);
        Assert.DoesNotContain(Array.IndexOf(paths, "loose.png"), split.Gallery);
        Assert.Equal(-1, split.Labels[Array.IndexOf(paths, "loose.png")]);
        Assert.All(split.HeldOut, i => Assert.Equal(paths[i].StartsWith("cats/", StringComparison.Ordinal) ? 0 : 1, split.Labels[i]));
    }

    [Fact]
    public void Images_without_two_classes_to_hold_out_give_no_split()
    {
        Assert.Null(HeldOutSplit.Of(Images("a.png", "b.png", "c.png", "d.png"), 0.5));
        Assert.Null(HeldOutSplit.Of(Images("cats/1.png", "cats/2.png", "dogs/1.png"), 0.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => HeldOutSplit.Of(Images("cats/1.png"), 1.0));
    }
}
