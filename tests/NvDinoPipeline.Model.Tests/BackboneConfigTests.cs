using System.Text.Json;

namespace NvDinoPipeline.Model.Tests;

public sealed class BackboneConfigTests
{
    public static TheoryData<string, long, long> PublishedSizes => new()
    {
        // DINOv2 paper sizes: ViT-S/14 21M, ViT-B/14 86M, ViT-L/14 300M, ViT-g/14 1.1B.
        { "vit_s", 21_000_000, 23_000_000 },
        { "vit_b", 85_000_000, 88_000_000 },
        { "vit_l", 300_000_000, 310_000_000 },
        { "vit_g", 1_100_000_000, 1_150_000_000 },
    };

    [Theory]
    [MemberData(nameof(PublishedSizes))]
    public void Parameter_counts_match_the_published_dinov2_sizes(string name, long low, long high)
    {
        var config = BackboneConfig.FromName(name);
        var reference = JsonSerializer.Deserialize<Dictionary<string, long>>(File.ReadAllText(Fixture.PathOf("param_counts.json")))!;

        Assert.Equal(reference[name], config.ParameterCount());
        Assert.InRange(config.ParameterCount(), low, high);
    }

    [Theory]
    [InlineData("vit_s")]
    [InlineData("vit_b")]
    public void A_built_model_has_the_computed_parameter_count(string name)
    {
        var config = BackboneConfig.FromName(name, imgSize: 224);
        using var model = new VisionTransformer(config);

        Assert.Equal(config.ParameterCount(), model.ParameterCount);
    }

    [Fact]
    public void Computed_count_matches_small_models_with_every_option()
    {
        var config = BackboneConfig.VitPico(imgSize: 42) with { FfnLayer = FfnLayer.SwiGlu, NumRegisterTokens = 4, LayerScaleInit = null };
        using var model = new VisionTransformer(config);

        Assert.Equal(config.ParameterCount(), model.ParameterCount);
    }

    [Fact]
    public void Giant_uses_swiglu_with_dinov2_hidden_width()
    {
        var giant = BackboneConfig.VitGiant();

        Assert.Equal(FfnLayer.SwiGlu, giant.FfnLayer);
        Assert.Equal(4096, giant.FfnHiddenDim);
        Assert.Equal((1536, 40, 24), (giant.EmbedDim, giant.Depth, giant.NumHeads));
    }

    [Theory]
    [InlineData("vit_s", 384, 12, 6)]
    [InlineData("vit_b", 768, 12, 12)]
    [InlineData("vit_l", 1024, 24, 16)]
    [InlineData("vit_g", 1536, 40, 24)]
    [InlineData("vit_t", 192, 12, 3)]
    [InlineData("vit_pico", 64, 2, 2)]
    [InlineData("vit_nano", 128, 4, 4)]
    [InlineData("vit_large", 1024, 24, 16)]
    public void Names_map_to_the_dinov2_architectures(string name, int dim, int depth, int heads)
    {
        var config = BackboneConfig.FromName(name, patchSize: 16, imgSize: 224, numRegisterTokens: 4, dropPathRate: 0.4);

        Assert.Equal((dim, depth, heads), (config.EmbedDim, config.Depth, config.NumHeads));
        Assert.Equal((16, 224, 4, 0.4), (config.PatchSize, config.ImgSize, config.NumRegisterTokens, config.DropPathRate));
    }

    [Fact]
    public void Rejects_an_unknown_name_and_lists_the_valid_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => BackboneConfig.FromName("vit_xl"));

        Assert.Contains("vit_xl", error.Message);
        Assert.Contains("vit_s, vit_b, vit_l, vit_g", error.Message);
    }

    [Theory]
    [InlineData(0, 224, "PatchSize")]
    [InlineData(15, 224, "ImgSize")]
    [InlineData(14, 225, "ImgSize")]
    public void Rejects_inconsistent_settings_naming_them(int patchSize, int imgSize, string named)
    {
        var error = Assert.Throws<ArgumentException>(() => BackboneConfig.FromName("vit_s", patchSize, imgSize));

        Assert.Contains(named, error.Message);
    }

    [Fact]
    public void Drop_path_rises_linearly_over_the_blocks()
    {
        var config = BackboneConfig.VitSmall() with { DropPathRate = 0.4 };

        Assert.Equal(0.0, config.DropPathRateOfBlock(0));
        Assert.Equal(0.4 * 5 / 11, config.DropPathRateOfBlock(5), 12);
        Assert.Equal(0.4, config.DropPathRateOfBlock(11), 12);
    }
}
