using NvDinoPipeline.Model.Weights;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Tests;

/// <summary>TAO NVDINOv2 checkpoints (timm names, Lightning layout) written by Fixtures/make_tao_fixtures.py.</summary>
public sealed class TaoCheckpointTests
{
    private const string Variant = "vit_swiglu_reg4";

    [Theory]
    [InlineData("tao_nvdinov2_swiglu_reg4.ckpt", "state_dict.teacher.backbone.")]
    [InlineData("tao_nvdinov2_teacher_swiglu_reg4.pth", "")]
    public void A_TAO_checkpoint_loads_the_whole_backbone_and_matches_the_DINOv2_named_weights(string file, string prefix)
    {
        using var scope = NewDisposeScope();
        using var model = new VisionTransformer(Fixture.ConfigOf(Variant));
        model.eval();
        var input = Fixture.Inputs()["img_42"];

        var report = BackboneWeights.Load(model, Fixture.PathOf(file));
        using var noGrad = no_grad();
        var output = model.forward_features(input);

        Assert.Equal(prefix, report.KeyPrefix);
        Assert.Equal(KeyNaming.Tao, report.KeyNaming);
        Assert.Equal(1.0, report.LoadedParameterFraction);
        Assert.True(report.IsComplete, $"missing [{string.Join(", ", report.Missing)}], unexpected [{string.Join(", ", report.Unexpected)}]");
        Assert.Contains("blocks.1.mlp.w12.weight", report.Loaded);
        using var dinov2 = Fixture.LoadedModel(Variant, "pth");
        var reference = dinov2.forward_features(input);
        Fixture.AssertClose(reference.ClsToken, output.ClsToken, 0);
        Fixture.AssertClose(reference.PatchTokens, output.PatchTokens, 0);
        var expected = Fixture.Expected(Variant);
        Fixture.AssertClose(expected["img_42.cls"], output.ClsToken);
        Fixture.AssertClose(expected["img_42.reg"], output.RegisterTokens);
    }

    [Fact]
    public void A_DINOv2_hub_checkpoint_reports_DINOv2_naming_and_the_whole_backbone()
    {
        using var model = new VisionTransformer(Fixture.ConfigOf(Variant));

        var report = BackboneWeights.Load(model, Fixture.PathOf($"{Variant}.pth"));

        Assert.Equal(KeyNaming.DinoV2, report.KeyNaming);
        Assert.Equal(1.0, report.LoadedParameterFraction);
    }

    [Fact]
    public void A_plain_mlp_backbone_keeps_fc1_and_fc2_as_its_own_names()
    {
        using var model = new VisionTransformer(Fixture.ConfigOf("vit_mlp_noreg"));

        var report = BackboneWeights.Load(model, Fixture.PathOf("vit_mlp_noreg.pth"));

        Assert.Equal(KeyNaming.DinoV2, report.KeyNaming);
        Assert.Contains("blocks.0.mlp.fc1.weight", report.Loaded);
    }

    [Fact]
    public void A_partial_load_fails_naming_the_file_and_missing_keys_and_changes_nothing()
    {
        // A two-block checkpoint into a three-block backbone: the third block's 14 tensors are missing.
        using var model = new VisionTransformer(Fixture.ConfigOf(Variant) with { Depth = 3 });
        var before = model.named_parameters().Single(p => p.name == "cls_token").parameter.clone();
        var path = Fixture.PathOf("tao_nvdinov2_swiglu_reg4.ckpt");

        var error = Assert.Throws<IncompleteCheckpointException>(() => BackboneWeights.Load(model, path));

        Assert.Contains(path, error.Message);
        Assert.Contains("blocks.2.norm1.weight", error.Message);
        Assert.Contains("and 9 more", error.Message);
        Assert.Equal(14, error.Missing.Count);
        Assert.InRange(error.LoadedFraction, 0.01, 0.99);
        Fixture.AssertClose(before, model.named_parameters().Single(p => p.name == "cls_token").parameter, 0);
    }

    [Fact]
    public void A_partial_load_is_reported_when_allowed()
    {
        using var model = new VisionTransformer(Fixture.ConfigOf(Variant) with { Depth = 3 });

        var report = BackboneWeights.Load(model, Fixture.PathOf("tao_nvdinov2_swiglu_reg4.ckpt"), new LoadOptions { AllowPartial = true });

        Assert.Equal(14, report.Missing.Count);
        Assert.InRange(report.LoadedParameterFraction, 0.01, 0.99);
        Assert.Contains("cls_token", report.Loaded);
    }
}
