using NvDinoPipeline.Model.Weights;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Tests;

public sealed class VisionTransformerTests
{
    public static TheoryData<string> Variants => ["vit_mlp_noreg", "vit_swiglu_reg4", "vit_mlp_reg4_nols"];

    [Theory]
    [MemberData(nameof(Variants))]
    public void Matches_the_reference_at_the_trained_resolution(string variant)
    {
        using var scope = NewDisposeScope();
        using var model = Fixture.LoadedModel(variant);
        var inputs = Fixture.Inputs();
        var expected = Fixture.Expected(variant);
        var run = model.Config.ImgSize == 28 ? "img_28" : "img_42";

        using var noGrad = no_grad();
        var output = model.forward_features(inputs[run]);

        Fixture.AssertClose(expected[$"{run}.cls"], output.ClsToken);
        Fixture.AssertClose(expected[$"{run}.patch"], output.PatchTokens);
        if (model.NumRegisterTokens > 0)
            Fixture.AssertClose(expected[$"{run}.reg"], output.RegisterTokens);
        else
            Assert.Equal([inputs[run].shape[0], 0, model.EmbedDim], output.RegisterTokens.shape);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Matches_the_reference_at_an_interpolated_non_square_resolution(string variant)
    {
        using var scope = NewDisposeScope();
        using var model = Fixture.LoadedModel(variant);
        var inputs = Fixture.Inputs();
        var expected = Fixture.Expected(variant);

        using var noGrad = no_grad();
        var output = model.forward_features(inputs["img_56x42"]);

        Assert.Equal([1, 4 * 3, 16], output.PatchTokens.shape);
        Fixture.AssertClose(expected["img_56x42.cls"], output.ClsToken);
        Fixture.AssertClose(expected["img_56x42.patch"], output.PatchTokens);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Interpolates_when_the_patch_count_matches_but_the_image_is_not_square(string variant)
    {
        using var scope = NewDisposeScope();
        using var model = Fixture.LoadedModel(variant);
        var inputs = Fixture.Inputs();
        var expected = Fixture.Expected(variant);

        using var noGrad = no_grad();
        var output = model.forward_features(inputs["img_14x56"]);

        Fixture.AssertClose(expected["img_14x56.cls"], output.ClsToken);
        Fixture.AssertClose(expected["img_14x56.patch"], output.PatchTokens);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Masked_patches_take_the_mask_token_as_in_ibot(string variant)
    {
        using var scope = NewDisposeScope();
        using var model = Fixture.LoadedModel(variant);
        var inputs = Fixture.Inputs();
        var expected = Fixture.Expected(variant);
        var run = model.Config.ImgSize == 28 ? "img_28" : "img_42";
        var masks = expected["masks"].to(ScalarType.Bool);

        using var noGrad = no_grad();
        var masked = model.forward_features(inputs[run], masks);
        var plain = model.forward_features(inputs[run]);

        Fixture.AssertClose(expected[$"{run}.masked.cls"], masked.ClsToken);
        Fixture.AssertClose(expected[$"{run}.masked.patch"], masked.PatchTokens);
        Assert.True(Fixture.MaxAbsDiff(masked.ClsToken, plain.ClsToken) > 1e-3);
    }

    [Fact]
    public void Forward_returns_the_normalised_cls_token()
    {
        using var scope = NewDisposeScope();
        using var model = Fixture.LoadedModel("vit_mlp_noreg");
        var inputs = Fixture.Inputs();
        var expected = Fixture.Expected("vit_mlp_noreg");

        using var noGrad = no_grad();
        var cls = model.forward(inputs["img_28"]);

        Fixture.AssertClose(expected["img_28.cls"], cls);
    }

    [Theory]
    [InlineData(30, 28, "height 30")]
    [InlineData(28, 41, "width 41")]
    public void Rejects_an_image_side_that_is_not_a_multiple_of_the_patch_and_names_it(int height, int width, string named)
    {
        using var model = new VisionTransformer(Fixture.Tiny(28));
        using var images = zeros(1, 3, height, width);

        var error = Assert.Throws<ArgumentException>(() => model.forward_features(images));

        Assert.Contains(named, error.Message);
        Assert.Contains("patch size 14", error.Message);
    }

    [Fact]
    public void Rejects_masks_that_do_not_cover_the_patch_grid()
    {
        using var model = new VisionTransformer(Fixture.Tiny(28));
        using var images = zeros(2, 3, 28, 28);
        using var masks = zeros(new long[] { 2, 5 }, ScalarType.Bool);

        var error = Assert.Throws<ArgumentException>(() => model.forward_features(images, masks));

        Assert.Contains("[2, 4]", error.Message);
    }

    [Fact]
    public void Parameter_names_equal_the_dinov2_state_dict_keys()
    {
        using var model = new VisionTransformer(BackboneConfig.VitPico(imgSize: 28) with { NumRegisterTokens = 4, Depth = 1 });

        var names = model.named_parameters().Select(p => p.name).Order(StringComparer.Ordinal).ToArray();

        string[] expected =
        [
            "blocks.0.attn.proj.bias", "blocks.0.attn.proj.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.qkv.weight",
            "blocks.0.ls1.gamma", "blocks.0.ls2.gamma", "blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc1.weight",
            "blocks.0.mlp.fc2.bias", "blocks.0.mlp.fc2.weight", "blocks.0.norm1.bias", "blocks.0.norm1.weight",
            "blocks.0.norm2.bias", "blocks.0.norm2.weight", "cls_token", "mask_token", "norm.bias", "norm.weight",
            "patch_embed.proj.bias", "patch_embed.proj.weight", "pos_embed", "register_tokens",
        ];
        Assert.Equal(expected, names);
    }

    [Fact]
    public void SwiGlu_blocks_use_fused_w12_and_w3_with_dinov2_hidden_width()
    {
        using var model = new VisionTransformer(BackboneConfig.VitPico(imgSize: 28) with { FfnLayer = FfnLayer.SwiGlu, LayerScaleInit = null });

        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        // hidden = (int(64 * 4 * 2 / 3) + 7) // 8 * 8 = 176
        Assert.Equal([2 * 176, 64], shapes["blocks.0.mlp.w12.weight"]);
        Assert.Equal([64, 176], shapes["blocks.1.mlp.w3.weight"]);
        Assert.DoesNotContain(shapes.Keys, k => k.Contains(".ls1.") || k.Contains(".fc1."));
        Assert.DoesNotContain("register_tokens", shapes.Keys);
    }

    [Fact]
    public void Initialisation_follows_dinov2()
    {
        using var model = new VisionTransformer(BackboneConfig.VitPico(imgSize: 56) with { NumRegisterTokens = 2, LayerScaleInit = 1e-5 });
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);

        Assert.InRange(p["pos_embed"].std().item<float>(), 0.015, 0.025);
        Assert.InRange(p["cls_token"].abs().max().item<float>(), 1e-9, 1e-5);
        Assert.InRange(p["register_tokens"].abs().max().item<float>(), 1e-9, 1e-5);
        Assert.Equal(0f, p["mask_token"].abs().max().item<float>());
        Assert.InRange(p["blocks.0.attn.qkv.weight"].std().item<float>(), 0.015, 0.025);
        Assert.Equal(0f, p["blocks.0.attn.qkv.bias"].abs().max().item<float>());
        Assert.Equal(1e-5f, p["blocks.1.ls2.gamma"].mean().item<float>(), 1e-9f);
    }

    [Fact]
    public void Counts_patches_for_any_multiple_of_the_patch()
    {
        using var model = new VisionTransformer(Fixture.Tiny(28));

        Assert.Equal(4 * 3, model.NumPatches(56, 42));
        Assert.Equal((4L, 3L), model.PatchGrid(56, 42));
        Assert.Throws<ArgumentException>(() => model.NumPatches(50, 42));
    }

    [Fact]
    public void Stochastic_depth_acts_only_in_training()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionTransformer(Fixture.Tiny(28) with { Depth = 4, DropPathRate = 0.6, LayerScaleInit = null });
        var images = randn(8, 3, 28, 28);

        model.eval();
        var evalA = model.forward(images);
        var evalB = model.forward(images);
        model.train();
        var trainRuns = Enumerable.Range(0, 4).Select(_ => model.forward(images)).ToList();

        Assert.Equal(0.0, Fixture.MaxAbsDiff(evalA, evalB));
        Assert.Contains(trainRuns, run => Fixture.MaxAbsDiff(run, evalA) > 1e-4);
    }

    [Fact]
    public void Gradients_reach_every_parameter()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionTransformer(Fixture.Tiny(28) with { NumRegisterTokens = 2 });
        model.train();
        var images = randn(2, 3, 28, 28);
        var masks = tensor(new[] { true, false, false, true, false, false, true, false }).reshape(2, 4);

        using var output = model.forward_features(images, masks);
        (output.ClsToken.sum() + output.PatchTokens.pow(2).sum() + output.RegisterTokens.sum()).backward();

        var withoutGradient = model.named_parameters().Where(p => p.parameter.grad is null).Select(p => p.name).ToList();
        Assert.Empty(withoutGradient);
    }
}
