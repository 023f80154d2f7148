namespace NvDinoPipeline.Specs.Tests;

public sealed class SpecLoaderTests : IDisposable
{
    private static readonly SpecLoader Loader = SpecFiles.Loader;
    private readonly SpecFiles files = new();

    public void Dispose() => files.Dispose();

    [Fact]
    public void User_file_overrides_the_template_and_leaves_other_keys_at_their_defaults()
    {
        var user = files.Write("user.yaml", """
            model:
              backbone:
                teacher_type: vit_s
                student_type: vit_s
                img_size: 224
            dataset:
              train_dataset:
                images_dir: /data/train
              transform:
                global_crops_scale: [0.4, 1.0]
            train:
              num_epochs: 50
            """);

        var spec = Loader.Resolve([user], []);

        Assert.Equal("vit_s", spec.Get<string>("model.backbone.teacher_type"));
        Assert.Equal(224, spec.Get<int>("model.backbone.img_size"));
        Assert.Equal("/data/train", spec.Get<string>("dataset.train_dataset.images_dir"));
        Assert.Equal([0.4, 1.0], spec.Get<IReadOnlyList<double>>("dataset.transform.global_crops_scale"));
        Assert.Equal(50, spec.Get<int>("train.num_epochs"));
        Assert.Equal(14, spec.Get<int>("model.backbone.patch_size"));
        Assert.Equal(0.04, spec.Get<double>("train.optim.weight_decay"));
    }

    [Fact]
    public void Later_files_override_earlier_ones_and_set_overrides_beat_every_file()
    {
        var first = files.Write("first.yaml", "train:\n  num_epochs: 50\n  seed: 7\n");
        var second = files.Write("second.yaml", "train:\n  num_epochs: 60\n");

        var spec = Loader.Resolve([first, second], ["train.num_epochs=30"]);

        Assert.Equal(30, spec.Get<int>("train.num_epochs"));
        Assert.Equal(7, spec.Get<int>("train.seed"));
        Assert.Equal(60, Loader.Resolve([first, second], []).Get<int>("train.num_epochs"));
    }

    [Fact]
    public void Set_values_are_parsed_by_the_type_of_their_key()
    {
        var spec = Loader.Resolve(Array.Empty<string>(),
        [
            "pipeline.deploy.target=tensorrt",
            "dataset.transform.local_crops_scale=[0.1,0.3]",
            "train.optim.lr=5e-4",
            "train.optim.weight_decay=0",
            "export.dynamic_hw=true",
            "train.pretrained_model_path=/models/start.ckpt",
            "model.backbone.layerscale_init=null",
            "gen_trt_engine.tensorrt.layers_precision=[\"/blocks.0/norm1:fp32\", \"/head:fp16\"]",
            "export.checkpoint=12",
            "dataset.test_dataset.images_dir=s3://bucket/test images 1",
        ]);

        Assert.Equal([0.1, 0.3], spec.Get<IReadOnlyList<double>>("dataset.transform.local_crops_scale"));
        Assert.Equal(5e-4, spec.Get<double>("train.optim.lr"));
        Assert.Equal(0.0, spec.Get<double>("train.optim.weight_decay"));
        Assert.True(spec.Get<bool>("export.dynamic_hw"));
        Assert.Equal("/models/start.ckpt", spec.Get<string>("train.pretrained_model_path"));
        Assert.Null(spec.Get<double?>("model.backbone.layerscale_init"));
        Assert.Equal(["/blocks.0/norm1:fp32", "/head:fp16"], spec.Get<IReadOnlyList<string>>("gen_trt_engine.tensorrt.layers_precision"));
        Assert.Equal("12", spec.Get<string>("export.checkpoint"));
        Assert.Equal("s3://bucket/test images 1", spec.Get<string>("dataset.test_dataset.images_dir"));
        Assert.Contains("\"weight_decay\":0.0", spec.ToJson());
    }

    [Fact]
    public void Rejects_unknown_key_and_names_the_closest_valid_one()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), ["train.num_epoch=3"]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("train.num_epoch", error.Key);
        Assert.Contains("did you mean 'train.num_epochs'?", error.Message);
        Assert.Equal("--set train.num_epoch=3", error.Source);
        Assert.Contains("--set train.num_epoch=3", error.Message);
    }

    [Theory]
    [InlineData("trian.num_epochs=3", "train.num_epochs")]
    [InlineData("num_epochs=3", "train.num_epochs")]
    [InlineData("train.optim.weight_decay_ned=0.1", "train.optim.weight_decay_end")]
    [InlineData("model.backbone.teacher=vit_s", "model.backbone.teacher_type")]
    [InlineData("dataset.transforms.n_local_crops=2", "dataset.transform.n_local_crops")]
    public void Suggests_a_key_for_misspelt_sections_leaves_and_missing_prefixes(string assignment, string suggested)
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), [assignment]));

        Assert.Contains($"did you mean '{suggested}'?", Assert.Single(exception.Errors).Message);
    }

    [Fact]
    public void Unknown_key_with_nothing_close_lists_the_keys_of_its_section()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), ["pipeline.deploy.foo=1"]));

        var error = Assert.Single(exception.Errors);
        Assert.DoesNotContain("did you mean", error.Message);
        Assert.Contains("the keys under 'pipeline.deploy' are: pipeline.deploy.target, pipeline.deploy.precision", error.Message);
    }

    [Fact]
    public void Unknown_key_in_a_file_names_the_file_and_line()
    {
        var user = files.Write("typo.yaml", """
            train:
              num_epochs: 40
              optim:
                wieght_decay: 0.05
            """);

        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve([user], []));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("train.optim.wieght_decay", error.Key);
        Assert.Contains("did you mean 'train.optim.weight_decay'?", error.Message);
        Assert.Equal($"{user}:4", error.Source);
    }

    [Fact]
    public void Wrong_type_names_the_key_the_value_and_what_is_expected()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), ["train.num_epochs=abc"]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("train.num_epochs", error.Key);
        Assert.Contains("'abc' is not an integer", error.Message);
        Assert.Contains("expected an integer >= 1", error.Message);
        Assert.Contains("--set train.num_epochs=abc", error.Message);
    }

    [Theory]
    [InlineData("train.num_epochs=0", "train.num_epochs", "0 is out of range; allowed: >= 1")]
    [InlineData("train.optim.lr=0", "train.optim.lr", "allowed: > 0")]
    [InlineData("train.loss.mask_sample_probability=1.5", "train.loss.mask_sample_probability", "allowed: in [0, 1]")]
    [InlineData("train.loss.mask_ratio_min_max=[0.5,0.1]", "train.loss.mask_ratio_min_max", "not in order")]
    [InlineData("dataset.transform.global_crops_scale=[0.4]", "dataset.transform.global_crops_scale", "has 1 elements; expected a list of 2 numbers")]
    [InlineData("export.batch_size=0", "export.batch_size", "-1 (dynamic batch) or a batch size >= 1")]
    [InlineData("export.checkpoint=lates", "export.checkpoint", "latest, best, an epoch number")]
    [InlineData("gen_trt_engine.tensorrt.layers_precision=[norm]", "gen_trt_engine.tensorrt.layers_precision", "<layer name>:<fp32|fp16|int8>")]
    [InlineData("evaluate.knn.k=0", "evaluate.knn.k", "allowed: >= 1")]
    [InlineData("evaluate.knn.temperature=0", "evaluate.knn.temperature", "allowed: > 0")]
    [InlineData("evaluate.gallery=val", "evaluate.gallery", "auto, train, test")]
    public void Out_of_range_values_name_the_key_the_value_and_the_allowed_range(string assignment, string key, string expected)
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), [assignment]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal(key, error.Key);
        Assert.Contains(expected, error.Message);
        Assert.Contains(assignment[(assignment.IndexOf('=') + 1)..].Trim('[', ']').Split(',')[0], error.Message);
    }

    [Fact]
    public void Bad_enum_value_lists_the_allowed_values()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), ["model.backbone.teacher_type=vit_x"]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("model.backbone.teacher_type", error.Key);
        Assert.Contains("'vit_x' is not an allowed value; allowed values: vit_pico, vit_nano, vit_t, vit_s, vit_b, vit_l, vit_g", error.Message);
    }

    [Fact]
    public void Multiple_errors_from_files_and_overrides_are_reported_together()
    {
        var user = files.Write("bad.yaml", """
            model:
              backbone:
                patch_size: 0
            dataset:
              batch_size: many
            inference:
              output_format: parquet
            """);

        var exception = Assert.Throws<SpecValidationException>(() =>
            Loader.Resolve([user], ["train.num_epoch=3", "train.precision=fp8"]));

        Assert.Equal(
            ["dataset.batch_size", "inference.output_format", "model.backbone.patch_size", "train.num_epoch", "train.precision"],
            exception.Errors.Select(error => error.Key).Order(StringComparer.Ordinal));
        Assert.Contains("5 errors", exception.Message);
        Assert.Contains("model.backbone.patch_size", exception.Message);
        Assert.Contains($"{user}:3", exception.Message);
    }

    [Fact]
    public void Image_size_that_is_not_a_multiple_of_the_patch_size_is_rejected()
    {
        var exception = Assert.Throws<SpecValidationException>(() =>
            Loader.Resolve(Array.Empty<string>(), ["model.backbone.img_size=500"]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("model.backbone.img_size", error.Key);
        Assert.Contains("500 is not a multiple of model.backbone.patch_size (14)", error.Message);
        Assert.Contains("490 and 504", error.Message);
    }

    [Fact]
    public void Changing_the_patch_size_flags_every_side_that_no_longer_divides()
    {
        var exception = Assert.Throws<SpecValidationException>(() =>
            Loader.Resolve(Array.Empty<string>(), ["model.backbone.patch_size=16"]));

        Assert.Equal(
            ["dataset.transform.local_crops_size", "model.backbone.img_size"],
            exception.Errors.Select(error => error.Key).Order(StringComparer.Ordinal));

        var fixedUp = Loader.Resolve(Array.Empty<string>(),
            ["model.backbone.patch_size=16", "model.backbone.img_size=512", "dataset.transform.local_crops_size=96"]);
        Assert.Equal(16, fixedUp.Get<int>("model.backbone.patch_size"));
    }

    [Fact]
    public void Cross_key_rules_catch_inconsistent_settings()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(),
        [
            "gen_trt_engine.tensorrt.min_batch_size=4",
            "gen_trt_engine.tensorrt.opt_batch_size=2",
            "dataset.batch_size=1",
            "model.backbone.student_type=vit_s",
        ]));

        var byKey = exception.Errors.ToDictionary(error => error.Key, error => error.Message);
        Assert.Contains("min_batch_size <= opt_batch_size <= max_batch_size, got 4 / 2 / 16", byKey["gen_trt_engine.tensorrt.opt_batch_size"]);
        Assert.Contains("KoLeo", byKey["dataset.batch_size"]);
        Assert.Contains("distillation is off", byKey["model.backbone.student_type"]);
    }

    [Fact]
    public void TensorRT_inference_batch_must_fit_the_engine_profile()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(),
            ["pipeline.deploy.target=tensorrt", "inference.batch_size=32"]));

        Assert.Contains("max_batch_size = 16", Assert.Single(exception.Errors, error => error.Key == "inference.batch_size").Message);
        Assert.Equal(32, Loader.Resolve(Array.Empty<string>(), ["inference.batch_size=32"]).Get<int>("inference.batch_size"));
    }

    [Fact]
    public void TAO_key_names_and_values_are_accepted_and_translated()
    {
        var user = files.Write("tao.yaml", """
            model:
              backbone:
                teacher_type: vit_small
                student_type: "vit_s"
                ffn_layer: swiglufused
            train:
              num_prototypes: 1024
              layerwise_decay: 0.8
              clip_grad_norm: 1.0
              precision: bf16-mixed
            """);

        var spec = Loader.Resolve([user], ["train.loss.centering=centering"]);

        Assert.Equal("vit_s", spec.Get<string>("model.backbone.teacher_type"));
        Assert.Equal("swiglu", spec.Get<string>("model.backbone.ffn_layer"));
        Assert.Equal(1024, spec.Get<int>("model.head.num_prototypes"));
        Assert.Equal(0.8, spec.Get<double>("train.optim.layerwise_decay"));
        Assert.Equal(1.0, spec.Get<double>("train.optim.clip_grad_norm"));
        Assert.Equal("bf16", spec.Get<string>("train.precision"));
        Assert.Equal("softmax", spec.Get<string>("train.loss.centering"));
        Assert.False(spec.ContainsKey("train.num_prototypes"));
    }

    [Fact]
    public void TAO_encryption_key_is_accepted_and_kept_out_of_the_resolved_spec()
    {
        var user = files.Write("tao-key.yaml", """
            encryption_key: s3cr3t-from-file
            train:
              num_epochs: 30
            """);

        var spec = Loader.Resolve([user], ["encryption_key=s3cr3t-from-override"]);

        Assert.Equal(30, spec.Get<int>("train.num_epochs"));
        Assert.False(spec.ContainsKey("encryption_key"));
        Assert.DoesNotContain("s3cr3t", spec.ToJson());
        Assert.DoesNotContain("s3cr3t", spec.ToYaml());
    }

    [Fact]
    public void TAO_settings_without_meaning_here_are_rejected_with_the_reason()
    {
        var user = files.Write("tao-extras.yaml", """
            results_dir: /results
            train:
              use_custom_attention: true
              schedulers:
                learning_rate:
                  val_base: 1.0e-4
            """);

        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve([user], []));

        Assert.Equal(["results_dir", "train.schedulers", "train.use_custom_attention"],
            exception.Errors.Select(error => error.Key).Order(StringComparer.Ordinal));
        Assert.Contains("schedules are epoch-based", exception.Errors.Single(error => error.Key == "train.schedulers").Message);
    }

    [Fact]
    public void Setting_one_of_two_linked_keys_sets_both()
    {
        var distilled = Loader.Resolve(Array.Empty<string>(), ["model.distill.enable=true", "model.backbone.student_type=vit_s"]);
        Assert.True(distilled.Get<bool>("pipeline.stages.distill"));

        var fp16 = Loader.Resolve(Array.Empty<string>(), ["pipeline.deploy.target=tensorrt", "pipeline.deploy.precision=fp16"]);
        Assert.Equal("fp16", fp16.Get<string>("gen_trt_engine.tensorrt.data_type"));
    }

    [Fact]
    public void Linked_keys_set_to_different_values_are_a_conflict()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(),
            ["pipeline.deploy.precision=fp16", "gen_trt_engine.tensorrt.data_type=int8"]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("pipeline.deploy.precision", error.Key);
        Assert.Contains("conflicts with gen_trt_engine.tensorrt.data_type = 'int8'", error.Message);
    }

    [Fact]
    public void A_linked_key_in_a_later_document_wins_over_its_partner_in_an_earlier_one()
    {
        // A single action: the parent's resolved spec names both keys; the request changes one of them.
        var parent = Loader.Resolve(Array.Empty<string>(), []).ToJson();
        var int8 = Loader.ResolveDocuments([new SpecDocument("parent spec", parent), new SpecDocument("spec", "gen_trt_engine:\n  tensorrt:\n    data_type: int8\n")], []);

        Assert.Equal("int8", int8.Get<string>("gen_trt_engine.tensorrt.data_type"));
        Assert.Equal("int8", int8.Get<string>("pipeline.deploy.precision"));
        var exception = Assert.Throws<SpecValidationException>(() => Loader.ResolveDocuments([new SpecDocument("parent spec", parent),
            new SpecDocument("spec", "gen_trt_engine:\n  tensorrt:\n    data_type: int8\npipeline:\n  deploy:\n    precision: fp16\n")], []));
        Assert.Contains("conflicts with", Assert.Single(exception.Errors).Message);
    }

    [Fact]
    public void A_section_given_a_value_is_rejected_listing_its_keys()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), ["pipeline.deploy=tensorrt"]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("pipeline.deploy", error.Key);
        Assert.Contains("pipeline.deploy.target, pipeline.deploy.precision", error.Message);
    }

    [Fact]
    public void Broken_files_and_malformed_overrides_are_reported_not_thrown_raw()
    {
        var broken = files.Write("broken.yaml", "train:\n  num_epochs: [1,\n");
        var missing = Path.Combine(Path.GetTempPath(), "no-such-spec.yaml");

        var exception = Assert.Throws<SpecValidationException>(() =>
            Loader.Resolve([broken, missing], ["train.num_epochs"]));

        Assert.Equal(3, exception.Errors.Count);
        Assert.Contains(exception.Errors, error => error.Message.StartsWith($"{broken} is not valid YAML") && error.Source == $"{broken}:3");
        Assert.Contains(exception.Errors, error => error.Message.Contains("does not exist") && error.Source == missing);
        Assert.Contains(exception.Errors, error => error.Message.Contains("is not a key=value override"));
    }

    [Fact]
    public void Spec_text_documents_resolve_like_files()
    {
        var spec = Loader.ResolveDocuments([new SpecDocument("request", "train:\n  num_epochs: 20\n")], []);
        Assert.Equal(20, spec.Get<int>("train.num_epochs"));

        var exception = Assert.Throws<SpecValidationException>(() =>
            Loader.ResolveDocuments([new SpecDocument("request", "train:\n  num_epochs: -2\n")], []));
        Assert.Equal("request:2", Assert.Single(exception.Errors).Source);
    }

    [Fact]
    public void Apply_overrides_a_resolved_spec_and_keeps_linked_keys_together()
    {
        var spec = Loader.Resolve(Array.Empty<string>(), ["train.num_epochs=30", "pipeline.deploy.target=tensorrt"]);

        var staged = Loader.Apply(spec, ["dataset.train_dataset.images_dir=/staged/train", "pipeline.deploy.precision=fp16"]);

        Assert.Equal(30, staged.Get<int>("train.num_epochs"));
        Assert.Equal("/staged/train", staged.Get<string>("dataset.train_dataset.images_dir"));
        Assert.Equal("fp16", staged.Get<string>("gen_trt_engine.tensorrt.data_type"));
        Assert.Null(spec.Get<string?>("dataset.train_dataset.images_dir"));
        Assert.Throws<SpecValidationException>(() => Loader.Apply(spec, ["train.num_epochs=0"]));
    }

    [Fact]
    public void Rejects_a_learning_rate_warm_up_longer_than_the_run()
    {
        var error = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), ["train.num_epochs=3", "train.optim.warmup_epochs=5"]));

        Assert.Contains(error.Errors, e => e.Key == "train.optim.warmup_epochs" && e.Message.Contains("more than train.num_epochs (3)"));
    }

    [Theory]
    [InlineData("train.precision=16-mixed", "train.precision", "'fp16' is not supported: float16 training (TAO's 16-mixed) needs loss scaling")]
    [InlineData("train.precision=fp16", "train.precision", "allowed values: auto, fp32, bf16")]
    [InlineData("dataset.transform.n_global_crops=3", "dataset.transform.n_global_crops", "3 is not an allowed value; allowed values: 2 (DINOv2's multi-crop objective")]
    [InlineData("model.backbone.interpolate_antialias=true", "model.backbone.interpolate_antialias", "true is not valid; expected false (antialiased position-embedding interpolation has no matching ONNX Resize mode")]
    [InlineData("train.num_nodes=2", "train.num_nodes", "2 is out of range; allowed: in [1, 1] (one training or distillation job runs on the GPUs of one host")]
    [InlineData("train.num_nodes=2", "train.num_nodes", "what scales across hosts is the pipelines and AutoML trials, spread over many training workers, not one job over several nodes")]
    [InlineData("train.gpu_ids=[0, 1]", "train.gpu_ids", "lists 2 GPU(s) but train.num_gpus is 1")]
    [InlineData("train.gpu_ids=[1, 1]", "train.gpu_ids", "a list of distinct CUDA device numbers")]
    [InlineData("train.gpu_ids=[-1]", "train.gpu_ids", "a list of distinct CUDA device numbers")]
    [InlineData("export.opset_version=22", "export.opset_version", "22 is out of range; allowed: in [17, 21] (the ONNX writer supports opsets 17 to 21)")]
    [InlineData("gen_trt_engine.tensorrt.data_type=fp16", "gen_trt_engine.tensorrt.data_type", "'fp16' needs pipeline.deploy.target=tensorrt")]
    [InlineData("gen_trt_engine.tensorrt.layers_precision=[\"/head:int8\"]", "gen_trt_engine.tensorrt.layers_precision", "'/head:int8' asks for int8 but gen_trt_engine.tensorrt.data_type is fp32")]
    [InlineData("gen_trt_engine.tensorrt.layers_precision=[\"/head:fp16\"]", "gen_trt_engine.tensorrt.layers_precision", "which the onnxruntime target cannot run")]
    [InlineData("gen_trt_engine.tensorrt.layers_precision=[\"a,b:fp32\"]", "gen_trt_engine.tensorrt.layers_precision", "layer names without ',' or ':'")]
    public void Values_a_worker_would_refuse_are_refused_at_validation_naming_key_value_and_what_is_allowed(string assignment, string key, string expected)
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), [assignment]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal(key, error.Key);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Several_gpus_of_one_host_are_accepted_with_or_without_their_device_numbers()
    {
        var spec = Loader.Resolve(Array.Empty<string>(), ["train.num_gpus=4"]);
        Assert.Equal(4, spec.Get<int>("train.num_gpus"));
        Assert.Empty(spec.Get<IReadOnlyList<double>>("train.gpu_ids"));

        var listed = Loader.Resolve(Array.Empty<string>(), ["train.num_gpus=2", "train.gpu_ids=[2, 3]"]);
        Assert.Equal([2.0, 3.0], listed.Get<IReadOnlyList<double>>("train.gpu_ids"));
    }

    [Fact]
    public void A_distillation_student_larger_than_the_teacher_is_refused_at_validation()
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(),
            ["pipeline.stages.distill=true", "model.backbone.teacher_type=vit_s", "model.backbone.student_type=vit_b"]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("model.backbone.student_type", error.Key);
        Assert.Contains("'vit_b' is larger than model.backbone.teacher_type 'vit_s'", error.Message);
        Assert.Contains("vit_pico, vit_nano, vit_t, vit_s", error.Message);
    }

    [Theory]
    [InlineData("train.validation_interval=1", "training has no validation pass")]
    [InlineData("inference.checkpoint=latest", "inference runs the deployed model")]
    [InlineData("export.on_cpu=true", "runs on no device")]
    [InlineData("export.verbose=true", "progress in the job's log")]
    public void Keys_no_stage_reads_are_refused_as_unsupported_with_the_reason(string assignment, string reason)
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve(Array.Empty<string>(), [assignment]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal(assignment[..assignment.IndexOf('=')], error.Key);
        Assert.Contains(reason, error.Message);
    }
}
