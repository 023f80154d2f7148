namespace NvDinoPipeline.Deployment.Tests;

public sealed class ModelMetadataTests
{
    private static ModelMetadata Sample() => new()
    {
        OnnxFile = "model.onnx",
        Opset = 17,
        Input = new TensorDescription("input", [-1, 3, 224, 224]),
        Outputs = [new TensorDescription("output", [-1, 384])],
        DynamicBatch = true,
        DynamicHeightWidth = false,
        Preprocessing = new Preprocessing { Height = 224, Width = 224 },
        Backbone = new BackboneDescription { Type = "vit_s", PatchSize = 14, EmbedDim = 384, Depth = 12, NumHeads = 6, TrainedImageSize = 224 },
    };

    [Fact]
    public void Round_trips_through_json_with_snake_case_keys()
    {
        var json = Sample().ToJson();

        var back = ModelMetadata.FromJson(json, "model.json");

        Assert.Contains("\"onnx_file\": \"model.onnx\"", json);
        Assert.Equal(384, back.EmbeddingDimension);
        Assert.Equal(Sample().Preprocessing.Mean, back.Preprocessing.Mean);
        Assert.Equal("vit_s", back.Backbone.Type);
    }

    [Fact]
    public void Unknown_format_and_broken_json_name_the_file()
    {
        var other = Sample() with { Format = "something/9" };

        var wrongFormat = Assert.Throws<InvalidDataException>(() => ModelMetadata.FromJson(other.ToJson(), "s3://b/model.json"));
        var broken = Assert.Throws<InvalidDataException>(() => ModelMetadata.FromJson("{", "s3://b/model.json"));

        Assert.Contains("s3://b/model.json", wrongFormat.Message);
        Assert.Contains("something/9", wrongFormat.Message);
        Assert.Contains("s3://b/model.json", broken.Message);
    }
}
