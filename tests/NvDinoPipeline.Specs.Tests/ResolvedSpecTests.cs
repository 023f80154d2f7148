namespace NvDinoPipeline.Specs.Tests;

public sealed class ResolvedSpecTests
{
    private static readonly SpecLoader Loader = SpecFiles.Loader;

    private static ResolvedSpec Custom() => Loader.Resolve(Array.Empty<string>(),
    [
        "model.backbone.teacher_type=vit_pico",
        "model.backbone.student_type=vit_pico",
        "model.backbone.img_size=56",
        "train.num_epochs=30",
        "train.optim.lr=1e-3",
        "train.pretrained_model_path=/models/a \"quoted\" name.ckpt",
        "gen_trt_engine.tensorrt.calibration.cal_image_dir=[/cal/a, /cal/b]",
    ]);

    [Fact]
    public void JSON_round_trip_is_stable_and_keeps_every_value_and_type()
    {
        var spec = Custom();
        var json = spec.ToJson();

        var back = ResolvedSpec.FromJson(json);

        Assert.Equal(json, back.ToJson());
        Assert.Equal(spec.Sha256, back.Sha256);
        Assert.Equal(spec.Keys.Order(StringComparer.Ordinal), back.Keys);
        Assert.Equal(1.0, back.Get<double>("train.teacher.final_momentum_teacher"));
        Assert.Throws<InvalidCastException>(() => back.Get<int>("train.teacher.final_momentum_teacher"));
        Assert.Equal(1e-3, back.Get<double>("train.optim.lr"));
        Assert.Equal("/models/a \"quoted\" name.ckpt", back.Get<string>("train.pretrained_model_path"));
        Assert.Equal(["/cal/a", "/cal/b"], back.Get<IReadOnlyList<string>>("gen_trt_engine.tensorrt.calibration.cal_image_dir"));
        Assert.Null(back.Get<string?>("dataset.train_dataset.images_dir"));
        Loader.Validate(back);
    }

    [Fact]
    public void Canonical_JSON_sorts_keys_and_marks_floats()
    {
        var json = Loader.Defaults.ToJson();

        Assert.StartsWith("{\"automl\":{\"automl_algorithm\":\"bayesian\",", json);
        Assert.Contains(",\"automl_policy\":\"off\",\"dataset\":{\"batch_size\":4,", json);
        Assert.Contains("\"final_momentum_teacher\":1.0", json);
        Assert.Contains("\"layerscale_init\":1.0E-05", json);
        Assert.Contains("\"global_crops_scale\":[0.32,1.0]", json);
        Assert.DoesNotContain(" ", json);
        Assert.Matches("^[0-9a-f]{64}$", Loader.Defaults.Sha256);
        Assert.NotEqual(Loader.Defaults.Sha256, Custom().Sha256);
    }

    [Fact]
    public void YAML_output_loads_back_to_the_same_spec()
    {
        var spec = Custom();

        var yaml = spec.ToYaml();
        var reloaded = Loader.ResolveDocuments([new SpecDocument("resolved.yaml", yaml)], []);

        Assert.StartsWith("model:\n  backbone:\n    teacher_type: \"vit_pico\"\n", yaml);
        Assert.Equal(spec.ToJson(), reloaded.ToJson());
    }

    [Fact]
    public void Section_reads_keys_relative_to_a_prefix()
    {
        var optim = Custom().Section("train.optim");

        Assert.Equal(1e-3, optim.Get<double>("lr"));
        Assert.Equal("adamw", optim.Get<string>("optim"));
        Assert.All(optim.Keys, key => Assert.DoesNotContain("train.", key));
        Assert.Equal(1.0, Custom().Section("train").Section("optim").Get<double>("layerwise_decay"));
        Assert.Throws<ArgumentException>(() => Custom().Section("train.num_epochs"));
        Assert.Contains("did you mean 'train.optim'?", Assert.Throws<KeyNotFoundException>(() => Custom().Section("train.optm")).Message);
    }

    [Fact]
    public void Get_names_the_closest_key_and_refuses_a_wrong_type()
    {
        var spec = Loader.Defaults;

        var missing = Assert.Throws<KeyNotFoundException>(() => spec.Get<int>("train.num_epoch"));
        Assert.Contains("did you mean 'train.num_epochs'?", missing.Message);
        var wrongType = Assert.Throws<InvalidCastException>(() => spec.Get<int>("train.precision"));
        Assert.Contains("train.precision", wrongType.Message);
        Assert.Throws<InvalidCastException>(() => spec.Get<int>("distill.num_epochs"));
        Assert.Null(spec.Get<int?>("distill.num_epochs"));
        Assert.False(spec.TryGet<int>("distill.num_epochs", out _));
        Assert.False(spec.TryGet<int>("no.such.key", out _));
    }

    [Fact]
    public void RequireString_names_a_key_that_has_no_value()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Defaults.RequireString("dataset.train_dataset.images_dir"));

        Assert.Equal("dataset.train_dataset.images_dir", Assert.Single(exception.Errors).Key);
        Assert.Equal("latest", Loader.Defaults.RequireString("export.checkpoint"));
    }

    [Fact]
    public void Validate_rejects_a_carried_spec_that_was_tampered_with()
    {
        var json = Loader.Defaults.ToJson()
            .Replace("\"num_epochs\":100", "\"num_epochs\":0")
            .Replace("\"seed\":1234", "\"seed\":1234,\"sead\":1")
            .Replace(",\"workers\":8", "");

        var exception = Assert.Throws<SpecValidationException>(() => Loader.Validate(ResolvedSpec.FromJson(json)));

        Assert.Equal(["dataset.workers", "train.num_epochs", "train.sead"],
            exception.Errors.Select(error => error.Key).Order(StringComparer.Ordinal));
        Assert.Contains("is missing", exception.Errors.Single(error => error.Key == "dataset.workers").Message);
        Assert.Contains("did you mean 'train.seed'?", exception.Errors.Single(error => error.Key == "train.sead").Message);
    }

    [Fact]
    public void FromJson_rejects_text_that_is_not_a_spec_tree()
    {
        Assert.Throws<FormatException>(() => ResolvedSpec.FromJson("[1, 2]"));
        Assert.Throws<FormatException>(() => ResolvedSpec.FromJson("{\"train\":{\"x\":[[1]]}}"));
        Assert.ThrowsAny<System.Text.Json.JsonException>(() => ResolvedSpec.FromJson("{\"train\":"));
    }
}
