using NvDinoPipeline.Model.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Tests;

public sealed class BackboneWeightsTests
{
    [Theory]
    [InlineData("vit_mlp_noreg")]
    [InlineData("vit_swiglu_reg4")]
    [InlineData("vit_mlp_reg4_nols")]
    public void Pth_and_safetensors_load_the_same_weights(string variant)
    {
        using var fromSafeTensors = Fixture.LoadedModel(variant);
        using var fromPth = Fixture.LoadedModel(variant, "pth");

        var a = fromSafeTensors.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var b = fromPth.named_parameters().ToDictionary(p => p.name, p => p.parameter);

        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, value) in a)
            Assert.True(value.equal(b[name]).all().item<bool>(), $"{name} differs between .pth and .safetensors");
    }

    [Fact]
    public void Reports_the_format_and_every_loaded_parameter()
    {
        using var model = new VisionTransformer(Fixture.ConfigOf("vit_swiglu_reg4"));

        var report = BackboneWeights.Load(model, Fixture.PathOf("vit_swiglu_reg4.pth"));

        Assert.Equal(CheckpointFormat.PyTorch, report.Format);
        Assert.Equal("", report.KeyPrefix);
        Assert.Equal(model.named_parameters().Count(), report.Loaded.Count);
        Assert.True(report.IsComplete);
    }

    [Fact]
    public void Reports_missing_and_unexpected_keys()
    {
        // The checkpoint has LayerScale and no register tokens; this model is the other way round.
        using var model = new VisionTransformer(Fixture.Tiny(28) with { NumRegisterTokens = 4, LayerScaleInit = null });

        var report = BackboneWeights.Load(model, Fixture.PathOf("vit_mlp_noreg.safetensors"), new LoadOptions { AllowPartial = true });

        Assert.Equal(["register_tokens"], report.Missing);
        Assert.Equal(["blocks.0.ls1.gamma", "blocks.0.ls2.gamma", "blocks.1.ls1.gamma", "blocks.1.ls2.gamma"], report.Unexpected);
        Assert.False(report.IsComplete);
        Assert.Contains("blocks.1.mlp.fc2.weight", report.Loaded);
    }

    [Fact]
    public void Strict_loading_throws_listing_missing_and_unexpected_keys()
    {
        using var model = new VisionTransformer(Fixture.Tiny(28) with { NumRegisterTokens = 4 });

        var error = Assert.Throws<InvalidDataException>(() =>
            BackboneWeights.Load(model, Fixture.PathOf("vit_mlp_noreg.safetensors"), new LoadOptions { Strict = true }));

        Assert.Contains("Missing: [register_tokens]", error.Message);
    }

    [Fact]
    public void A_shape_mismatch_names_the_tensor_and_both_shapes_and_changes_nothing()
    {
        using var model = new VisionTransformer(Fixture.Tiny(28) with { MlpRatio = 2.0 });
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.clone());

        var error = Assert.Throws<TensorShapeMismatchException>(() =>
            BackboneWeights.Load(model, Fixture.PathOf("vit_mlp_noreg.pth")));

        Assert.Matches(@"blocks\.\d\.mlp\.fc[12]\.(weight|bias)", error.TensorName);
        Assert.Contains(error.TensorName, error.Message);
        Assert.Contains($"[{string.Join(", ", error.CheckpointShape)}]", error.Message);
        Assert.Contains($"[{string.Join(", ", error.ModelShape)}]", error.Message);
        Assert.NotEqual(error.CheckpointShape, error.ModelShape);
        foreach (var (name, value) in model.named_parameters())
            Assert.True(value.equal(before[name]).all().item<bool>(), $"{name} changed by a failed load");
    }

    [Fact]
    public void Position_embeddings_of_another_grid_are_interpolated_and_reported()
    {
        using var scope = NewDisposeScope();
        // Weights trained on a 2x2 grid loaded into a model whose grid is 3x3: the model must then behave as the
        // original does when it interpolates at run time for 42x42 images.
        using var model = new VisionTransformer(Fixture.Tiny(42));
        model.eval();
        var expected = Fixture.Expected("vit_mlp_noreg");
        var inputs = Fixture.Inputs();

        var report = BackboneWeights.Load(model, Fixture.PathOf("vit_mlp_noreg.safetensors"));
        using var noGrad = no_grad();
        var output = model.forward_features(inputs["img_42"]);

        Assert.Equal(["pos_embed: 2x2 grid resampled to 3x3"], report.Interpolated);
        Fixture.AssertClose(expected["img_42.cls"], output.ClsToken);
        Fixture.AssertClose(expected["img_42.patch"], output.PatchTokens);
    }

    [Fact]
    public void Position_interpolation_can_be_refused()
    {
        using var model = new VisionTransformer(Fixture.Tiny(42));

        var error = Assert.Throws<TensorShapeMismatchException>(() => BackboneWeights.Load(
            model, Fixture.PathOf("vit_mlp_noreg.safetensors"), new LoadOptions { InterpolatePositionEmbedding = false }));

        Assert.Equal("pos_embed", error.TensorName);
    }

    [Fact]
    public void A_dinov2_training_checkpoint_loads_the_teacher_backbone()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionTransformer(Fixture.ConfigOf("vit_mlp_noreg"));
        model.eval();

        var report = BackboneWeights.Load(model, Fixture.PathOf("dinov2_training_checkpoint.pth"));
        using var noGrad = no_grad();
        var output = model.forward_features(Fixture.Inputs()["img_28"]);

        Assert.Equal("model.teacher.backbone.", report.KeyPrefix);
        Assert.True(report.IsComplete, $"missing [{string.Join(", ", report.Missing)}], unexpected [{string.Join(", ", report.Unexpected)}]");
        Assert.True(report.IgnoredOutsidePrefix > report.Loaded.Count);
        Fixture.AssertClose(Fixture.Expected("vit_mlp_noreg")["img_28.cls"], output.ClsToken);
    }

    [Fact]
    public void An_explicit_prefix_selects_the_student()
    {
        using var teacher = Fixture.LoadedModel("vit_mlp_noreg");
        using var student = new VisionTransformer(Fixture.ConfigOf("vit_mlp_noreg"));

        var report = BackboneWeights.Load(student, Fixture.PathOf("dinov2_training_checkpoint.pth"),
            new LoadOptions { KeyPrefix = "model.student.backbone." });

        Assert.True(report.IsComplete);
        var studentNorm = student.named_parameters().Single(p => p.name == "norm.bias").parameter;
        var teacherNorm = teacher.named_parameters().Single(p => p.name == "norm.bias").parameter;
        Fixture.AssertClose(teacherNorm + 1.0f, studentNorm, 1e-6);
    }

    [Fact]
    public void Saved_weights_reload_identically_with_their_config()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(Path.GetTempPath(), $"backbone-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var original = Fixture.LoadedModel("vit_swiglu_reg4");
            BackboneWeights.Save(original, path, new Dictionary<string, string> { ["epoch"] = "3" });

            var config = BackboneWeights.ReadConfig(path);
            Assert.Equal(original.Config, config);
            Assert.Equal("3", SafeTensors.ReadMetadata(path)["epoch"]);
            using var copy = new VisionTransformer(config!);
            var report = BackboneWeights.Load(copy, path, new LoadOptions { Strict = true });

            Assert.Equal(original.named_parameters().Count(), report.Loaded.Count);
            var images = Fixture.Inputs()["img_42"];
            using var noGrad = no_grad();
            original.eval();
            copy.eval();
            Assert.Equal(0.0, Fixture.MaxAbsDiff(copy.forward(images), original.forward(images)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Loads_into_and_runs_a_bfloat16_model()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionTransformer(Fixture.ConfigOf("vit_mlp_noreg"));
        model.to(ScalarType.BFloat16);
        model.eval();

        var report = BackboneWeights.Load(model, Fixture.PathOf("vit_mlp_noreg.safetensors"));
        using var noGrad = no_grad();
        var output = model.forward_features(Fixture.Inputs()["img_56x42"].to(ScalarType.BFloat16));

        Assert.True(report.IsComplete);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.Equal(ScalarType.BFloat16, output.ClsToken.dtype);
        // bfloat16 keeps 8 significant bits; outputs are LayerNorm-scaled, so a few hundredths is the expected drift.
        Fixture.AssertClose(Fixture.Expected("vit_mlp_noreg")["img_56x42.cls"], output.ClsToken, 0.1);
    }
}
