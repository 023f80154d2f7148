namespace NvDinoPipeline.Specs.Tests;

/// <summary>A spec as a client sends it in a start message: JSON or YAML holding only its keys, or a whole resolved spec.</summary>
public sealed class SpecRequestTests
{
    private static readonly SpecLoader Loader = SpecFiles.Loader;

    [Fact]
    public void Overrides_as_json_merge_over_the_templates_like_a_spec_file_and_set()
    {
        var request = Loader.ResolveRequest("""{"train": {"num_epochs": 3, "optim": {"warmup_epochs": 0}}, "model": {"backbone": {"teacher_type": "vit_s", "student_type": "vit_s"}}}""", "spec");

        var cli = Loader.Resolve([], ["train.num_epochs=3", "train.optim.warmup_epochs=0", "model.backbone.teacher_type=vit_s", "model.backbone.student_type=vit_s"]);

        Assert.Equal(cli.ToJson(), request.ToJson());
    }

    [Fact]
    public void Overrides_as_yaml_text_merge_over_the_templates()
    {
        var request = Loader.ResolveRequest("train:\n  num_epochs: 3\n  optim:\n    warmup_epochs: 0\n", "spec");

        Assert.Equal(3, request.Get<int>("train.num_epochs"));
        Assert.Equal(Loader.Defaults.Get<int>("train.seed"), request.Get<int>("train.seed"));
    }

    [Fact]
    public void A_resolved_spec_sent_back_resolves_to_the_same_bytes()
    {
        var resolved = Loader.Resolve([], ["train.num_epochs=3", "train.optim.warmup_epochs=0", "train.optim.lr=0.000123", "dataset.transform.global_crops_scale=[0.4,1.0]"]);

        Assert.Equal(resolved.ToJson(), Loader.ResolveRequest(resolved.ToJson(), "spec").ToJson());
        Assert.Equal(Loader.Defaults.ToJson(), Loader.ResolveRequest(Loader.Defaults.ToJson(), "spec").ToJson());
    }

    [Fact]
    public void A_bad_request_names_each_key()
    {
        var error = Assert.Throws<SpecValidationException>(() =>
            Loader.ResolveRequest("""{"train": {"num_epoch": 3, "seed": "abc"}}""", "spec"));

        Assert.Contains(error.Errors, e => e.Key == "train.num_epoch" && e.ToString().Contains("did you mean 'train.num_epochs'"));
        Assert.Contains(error.Errors, e => e.Key == "train.seed");
    }
}
