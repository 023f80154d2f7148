using Microsoft.Extensions.Options;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Evaluation;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Evaluation.Tests;

public sealed class ImageLabelsTests : IDisposable
{
    private readonly TempDirectory folder;
    private readonly ArtifactStore store;

    public ImageLabelsTests()
    {
        folder = new TempDirectory("nvdino-labels");
        store = new ArtifactStore(Options.Create(new ArtifactStoreOptions { Root = new Uri(folder.Combine("artifacts") + "/").AbsoluteUri, AllowedReadRoots = [folder.Path] }));
    }

    public void Dispose()
    {
        store.Dispose();
        folder.Dispose();
    }

    [Theory]
    [InlineData("train/cat/001.png", "cat")]
    [InlineData("dog/002.jpg", "dog")]
    [InlineData("./dog/002.jpg", "dog")]
    [InlineData("003.png", null)]
    [InlineData("/003.png", null)]
    public void The_label_of_an_image_is_the_name_of_its_folder(string path, string? label) =>
        Assert.Equal(label, ImagePaths.ClassFolderOf(path));

    [Fact]
    public async Task A_labels_csv_labels_the_images_it_names_and_leaves_out_the_others()
    {
        var csv = Write("labels.csv", "input_path,label\n./a/1.png,cat\nb/2.png,\"dog, large\"\n");
        var labels = await ImageLabels.ReadCsvAsync(Store(), csv, "evaluate.test_labels", folder.Path, CancellationToken.None);
        using var source = new InMemoryImageSource([Image("a/1.png"), Image("b/2.png"), Image("c/3.png")]);

        var labelled = ImageLabels.Of(source, labels, csv);

        Assert.Equal([0, 1], labelled.Indices);
        Assert.Equal(["cat", "dog, large"], labelled.Labels);
        Assert.Equal(csv, labelled.From);
    }

    [Theory]
    [InlineData("path,class\na.png,cat\n", "must have the header input_path,label")]
    [InlineData("input_path,label\na.png,cat\na.png,dog\n", "names a.png twice (row 3)")]
    [InlineData("input_path,label\na.png,\n", "row 2 has an empty input_path or label")]
    public async Task A_malformed_labels_csv_fails_naming_its_key_and_what_is_wrong(string content, string expected)
    {
        var csv = Write("bad.csv", content);
        var error = await Assert.ThrowsAsync<StageInputException>(() =>
            ImageLabels.ReadCsvAsync(Store(), csv, "evaluate.train_labels", folder.Path, CancellationToken.None));
        Assert.StartsWith("evaluate.train_labels: ", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task A_labels_csv_that_is_not_there_fails_naming_it()
    {
        var missing = folder.Combine("missing.csv");
        var error = await Assert.ThrowsAsync<StageInputException>(() =>
            ImageLabels.ReadCsvAsync(Store(), missing, "evaluate.test_labels", folder.Path, CancellationToken.None));
        Assert.Contains(missing, error.Message);
    }

    [Fact]
    public void Taking_fewer_images_spreads_them_over_every_class()
    {
        var labelled = new LabelledImages([.. Enumerable.Range(0, 100)], [.. Enumerable.Range(0, 100).Select(i => $"c{i / 25}")], "folder names");
        var taken = labelled.Take(8);
        Assert.Equal(8, taken.Count);
        Assert.Equal(["c0", "c1", "c2", "c3"], taken.Classes);
        Assert.Same(labelled, labelled.Take(0));
    }

    private string Write(string name, string content)
    {
        var path = folder.Combine(name);
        File.WriteAllText(path, content);
        return path;
    }

    private ArtifactStore Store() => store;

    private static DecodedImage Image(string path) => new(new byte[12], 2, 2, 3, path);
}
