using System.Collections.Immutable;
using System.Globalization;

namespace NvDinoPipeline.Specs;

/// <summary>A check that relates several keys; it runs only when each of its keys is valid on its own.</summary>
internal sealed record CrossRule(ImmutableArray<string> Keys, Func<SpecEntries, IEnumerable<SpecError>> Check);

/// <summary>
/// The rule table of the spec. Types and defaults come from the templates in <c>specs/</c>;
/// this table adds what a YAML value cannot show: enums, ranges, nullability and cross-key rules.
/// </summary>
internal static class SpecRules
{
    public const string PatchSizeKey = "model.backbone.patch_size";

    private static readonly string[] Backbones = ["vit_pico", "vit_nano", "vit_t", "vit_s", "vit_b", "vit_l", "vit_g"];

    private static readonly (string, string)[] BackboneAliases =
    [
        ("vit_tiny", "vit_t"), ("vit_small", "vit_s"), ("vit_base", "vit_b"),
        ("vit_large", "vit_l"), ("vit_giant", "vit_g"), ("vit_giant2", "vit_g"),
    ];

    private static readonly string[] Precisions = ["fp32", "fp16", "int8"];

    private const string CheckpointSelector = "latest, best, an epoch number >= 1, or a checkpoint path";

    public static ImmutableArray<KeyRule> Keys { get; } =
    [
        K("model.backbone.teacher_type").OneOf(Backbones).Accepting(BackboneAliases),
        K("model.backbone.student_type").OneOf(Backbones).Accepting(BackboneAliases),
        K(PatchSizeKey).AtLeast(1),
        K("model.backbone.img_size").AtLeast(1),
        K("model.backbone.num_register_tokens").AtLeast(0),
        K("model.backbone.drop_path_rate").AtLeast(0).Below(1),
        K("model.backbone.ffn_layer").OneOf("swiglu", "mlp").Accepting(("swiglufused", "swiglu")),
        K("model.backbone.layerscale_init").NullableOf(SpecType.Float).Above(0),
        K("model.backbone.interpolate_offset").AtLeast(0).Below(1),
        K("model.backbone.interpolate_antialias").Must(value => !value.Bool, "false")
            .Because("antialiased position-embedding interpolation has no matching ONNX Resize mode, so the trained model could not be exported"),
        K("model.head.num_layers").AtLeast(1),
        K("model.head.hidden_dim").AtLeast(1),
        K("model.head.bottleneck_dim").AtLeast(1),
        K("model.head.num_prototypes").AtLeast(1),
        K("model.distill.feature_matching.cls_weight").AtLeast(0),
        K("model.distill.feature_matching.patch_weight").AtLeast(0),

        K("dataset.train_dataset.images_dir").NullableOf(SpecType.String).Input(),
        K("dataset.test_dataset.images_dir").NullableOf(SpecType.String).Input(),
        K("dataset.batch_size").AtLeast(1),
        K("dataset.workers").AtLeast(0),
        K("dataset.transform.n_global_crops").OneOf(2L).Because("DINOv2's multi-crop objective compares exactly 2 global crops"),
        K("dataset.transform.global_crops_scale").Pair().Above(0).AtMost(1),
        K("dataset.transform.global_crops_size").AtLeast(1),
        K("dataset.transform.n_local_crops").AtLeast(0),
        K("dataset.transform.local_crops_scale").Pair().Above(0).AtMost(1),
        K("dataset.transform.local_crops_size").AtLeast(1),

        K("train.num_epochs").AtLeast(1),
        K("train.num_gpus").AtLeast(1),
        K("train.gpu_ids").Of(SpecType.NumberList).Must(AreGpuIds, "a list of distinct CUDA device numbers (0 or more)"),
        K("train.num_nodes").AtLeast(1).AtMost(1).Because(
            "one training or distillation job runs on the GPUs of one host (train.num_gpus, train.gpu_ids); what scales across "
            + "hosts is the pipelines and AutoML trials, spread over many training workers, not one job over several nodes"),
        K("train.checkpoint_interval").AtLeast(1),
        K("train.checkpoint_interval_minutes").NullableOf(SpecType.Float).Above(0),
        K("train.pretrained_model_path").NullableOf(SpecType.String).Input(),
        K("train.resume_training_checkpoint_path").NullableOf(SpecType.String).Input(),
        K("train.allow_partial_pretrained_load").Of(SpecType.Bool),
        K("train.seed").AtLeast(-1),
        K("train.precision").OneOf("auto", "fp32", "bf16").Accepting(
            ("32", "fp32"), ("32-true", "fp32"), ("16", "fp16"), ("16-mixed", "fp16"), ("16-true", "fp16"),
            ("bf16-mixed", "bf16"), ("bf16-true", "bf16"))
            .Refusing("fp16", "float16 training (TAO's 16-mixed) needs loss scaling, which this trainer does not do; "
                + "bf16 trains in bfloat16 compute with float32 weights, and auto picks it where the hardware has bfloat16 instructions"),
        K("train.num_threads").AtLeast(0),
        K("train.optim.optim").OneOf("adamw"),
        K("train.optim.lr").Above(0),
        K("train.optim.scaling_rule").OneOf("sqrt_wrt_1024", "linear_wrt_1024", "none"),
        K("train.optim.min_lr").AtLeast(0),
        K("train.optim.warmup_epochs").AtLeast(0),
        K("train.optim.weight_decay").AtLeast(0),
        K("train.optim.weight_decay_end").AtLeast(0),
        K("train.optim.layerwise_decay").Above(0).AtMost(1),
        K("train.optim.patch_embed_lr_mult").Above(0),
        K("train.optim.clip_grad_norm").AtLeast(0),
        K("train.optim.freeze_last_layer_epochs").AtLeast(0),
        K("train.optim.adamw_beta1").AtLeast(0).Below(1),
        K("train.optim.adamw_beta2").AtLeast(0).Below(1),
        K("train.teacher.momentum_teacher").Probability(),
        K("train.teacher.final_momentum_teacher").Probability(),
        K("train.teacher.warmup_teacher_temp").Above(0),
        K("train.teacher.teacher_temp").Above(0),
        K("train.teacher.warmup_teacher_temp_epochs").AtLeast(0),
        K("train.loss.dino_loss_weight").AtLeast(0),
        K("train.loss.ibot_loss_weight").AtLeast(0),
        K("train.loss.koleo_loss_weight").AtLeast(0),
        K("train.loss.centering").OneOf("softmax", "sinkhorn_knopp").Accepting(("centering", "softmax")),
        K("train.loss.student_temp").Above(0),
        K("train.loss.center_momentum").Probability(),
        K("train.loss.mask_ratio_min_max").Pair().Probability(),
        K("train.loss.mask_sample_probability").Probability(),

        K("distill.teacher_checkpoint").Must(IsCheckpointSelector, CheckpointSelector).Input(),
        K("distill.teacher_backbone").OneOf("teacher", "student"),
        K("distill.num_epochs").NullableOf(SpecType.Int).AtLeast(1),

        K("export.checkpoint").Must(IsCheckpointSelector, CheckpointSelector).Input(),
        K("export.onnx_file").NullableOf(SpecType.String).Output(),
        K("export.opset_version").AtLeast(17).AtMost(21).Because("the ONNX writer supports opsets 17 to 21"),
        K("export.batch_size").Must(IsBatchOrDynamic, "-1 (dynamic batch) or a batch size >= 1"),
        K("export.input_channel").OneOf(3L),
        K("export.input_width").AtLeast(1),
        K("export.input_height").AtLeast(1),

        K("gen_trt_engine.onnx_file").NullableOf(SpecType.String).Input(),
        K("gen_trt_engine.trt_engine").NullableOf(SpecType.String).Output(),
        K("gen_trt_engine.timing_cache").NullableOf(SpecType.String).Input(),
        K("gen_trt_engine.batch_size").Must(IsBatchOrDynamic, "-1 (dynamic batch) or a batch size >= 1"),
        K("gen_trt_engine.tensorrt.data_type").OneOf(Precisions),
        K("gen_trt_engine.tensorrt.workspace_size").AtLeast(0),
        K("gen_trt_engine.tensorrt.min_batch_size").AtLeast(1),
        K("gen_trt_engine.tensorrt.opt_batch_size").AtLeast(1),
        K("gen_trt_engine.tensorrt.max_batch_size").AtLeast(1),
        K("gen_trt_engine.tensorrt.layers_precision").Of(SpecType.StringList)
            .Must(AreLayerPrecisions, "a list of \"<layer name>:<fp32|fp16|int8>\" strings, layer names without ',' or ':' "
                + "(trtexec's --layerPrecisions cannot express them)"),
        K("gen_trt_engine.tensorrt.calibration.cal_image_dir").Of(SpecType.StringList).Input(),
        K("gen_trt_engine.tensorrt.calibration.cal_cache_file").NullableOf(SpecType.String).Input(),
        K("gen_trt_engine.tensorrt.calibration.cal_batch_size").AtLeast(1),
        K("gen_trt_engine.tensorrt.calibration.cal_batches").AtLeast(1),
        K("gen_trt_engine.tensorrt.calibration.method").OneOf("minmax", "percentile", "entropy"),
        K("gen_trt_engine.tensorrt.calibration.percentile").Above(0).AtMost(100),

        K("inference.trt_engine").NullableOf(SpecType.String).Input(),
        K("inference.onnx_file").NullableOf(SpecType.String).Input(),
        K("inference.batch_size").AtLeast(1),
        K("inference.execution_provider").OneOf("auto", "tensorrt", "cuda", "cpu"),
        K("inference.output_format").OneOf("csv", "jsonl"),
        K("evaluate.knn.k").AtLeast(1),
        K("evaluate.knn.temperature").Above(0),
        K("evaluate.gallery").OneOf("auto", "train", "test"),
        K("evaluate.test_labels").NullableOf(SpecType.String).Input(),
        K("evaluate.train_labels").NullableOf(SpecType.String).Input(),
        K("evaluate.max_test_images").AtLeast(0),
        K("evaluate.max_gallery_images").AtLeast(0),
        K("evaluate.batch_size").AtLeast(1),

        K("automl_policy").OneOf("auto", "off").Accepting(("on", "auto"), ("true", "auto"), ("false", "off")),
        K("automl.automl_algorithm").OneOf("bayesian", "hyperband").Accepting(("bayes", "bayesian"), ("bo", "bayesian")),
        K("automl.automl_max_recommendations").AtLeast(1).AtMost(1000),
        K("automl.automl_r").AtLeast(1).AtMost(10000),
        K("automl.automl_nu").AtLeast(2),
        K("automl.epoch_multiplier").AtLeast(1),
        K("automl.max_concurrent_trials").AtLeast(1),
        K("automl.automl_hyperparameters").Of(SpecType.StringList),
        K("automl.metric").OneOf("auto", "knn", "loss"),
        K("automl.held_out_fraction").Above(0).Below(1),

        K("pipeline.deploy.target").OneOf("onnxruntime", "tensorrt"),
        K("pipeline.deploy.precision").OneOf(Precisions),
    ];

    /// <summary>TAO keys that NvDinoPipeline keeps under another name; accepted on input.</summary>
    public static ImmutableDictionary<string, string> KeyAliases { get; } = new Dictionary<string, string>
    {
        ["train.num_prototypes"] = "model.head.num_prototypes",
        ["train.layerwise_decay"] = "train.optim.layerwise_decay",
        ["train.clip_grad_norm"] = "train.optim.clip_grad_norm",
        ["model.distill.pretrained_non_distill_pl_model_path"] = "distill.teacher_checkpoint",
        // TAO API's spelling; key names here are lower case.
        ["automl.automl_R"] = "automl.automl_r",
    }.ToImmutableDictionary(StringComparer.Ordinal);

    /// <summary>
    /// TAO keys accepted so TAO specs and commands run unchanged, then discarded on input: their values never reach the
    /// resolved spec, so they are never logged, stored in the state database or written with an artifact.
    /// TAO's encryption_key encrypts .tlt/.etlt models; nothing here is encrypted with it (see README).
    /// </summary>
    public static ImmutableHashSet<string> DiscardedTaoKeys { get; } = ImmutableHashSet.Create(StringComparer.Ordinal, "encryption_key");

    /// <summary>TAO keys (and key prefixes) with no meaning here, and why; rejected with that reason.</summary>
    public static ImmutableArray<(string Prefix, string Reason)> UnusedTaoKeys { get; } =
    [
        ("model_name", "the model is always NVDINOv2"),
        ("results_dir", "every stage writes to its job's output location in the artifact store"),
        ("train.results_dir", "every stage writes to its job's output location in the artifact store"),
        ("export.results_dir", "every stage writes to its job's output location in the artifact store"),
        ("inference.results_dir", "every stage writes to its job's output location in the artifact store"),
        ("gen_trt_engine.results_dir", "every stage writes to its job's output location in the artifact store"),
        ("wandb", "metrics are reported with each job, not to Weights & Biases"),
        ("inference.gpu_ids", "the device is chosen automatically (CUDA when available)"),
        ("export.gpu_id", "the device is chosen automatically (CUDA when available)"),
        ("gen_trt_engine.gpu_id", "the device is chosen automatically (CUDA when available)"),
        ("inference.num_gpus", "inference runs on one device"),
        ("inference.num_nodes", "inference runs on one device"),
        ("train.cudnn", "there are no cuDNN switches"),
        ("train.use_custom_attention", "attention always uses scaled_dot_product_attention"),
        ("train.checkpoint_interval_unit", "checkpoints are saved every train.checkpoint_interval epochs"),
        ("train.checkpoint_step_interval", "checkpoints are saved every train.checkpoint_interval epochs"),
        ("train.max_steps", "training length is train.num_epochs"),
        ("train.schedulers", "schedules are epoch-based: use train.optim.lr, min_lr, warmup_epochs, weight_decay, "
            + "weight_decay_end, freeze_last_layer_epochs and train.teacher.*"),
        ("dataset.pin_memory", "the data loader has no pinned-memory option"),
        ("inference.vis_after_n_batches", "inference writes embeddings, not visualisations"),
        ("export.format", "export always writes ONNX"),
        ("export.on_cpu", "export writes the ONNX graph from the checkpoint's weights directly and runs on no device"),
        ("export.verbose", "export reports its progress in the job's log and events"),
        ("train.validation_interval", "training has no validation pass: each epoch's mean training loss is reported with the job, "
            + "and export.checkpoint=best picks the epoch with the lowest"),
        ("inference.checkpoint", "inference runs the deployed model (the pipeline's engine or ONNX export, or inference.onnx_file / "
            + "inference.trt_engine); export.checkpoint chooses which checkpoint is exported"),
    ];

    /// <summary>Pairs of keys that are one setting under two names (TAO's and the pipeline's): setting one sets the other.</summary>
    public static ImmutableArray<(string A, string B)> LinkedKeys { get; } =
    [
        ("model.distill.enable", "pipeline.stages.distill"),
        ("gen_trt_engine.tensorrt.data_type", "pipeline.deploy.precision"),
    ];

    private static readonly string[] PatchMultiples =
    [
        "model.backbone.img_size",
        "dataset.transform.global_crops_size",
        "dataset.transform.local_crops_size",
        "export.input_width",
        "export.input_height",
    ];

    public static ImmutableArray<CrossRule> CrossRules { get; } =
    [
        .. PatchMultiples.Select(key => new CrossRule([key, PatchSizeKey], spec => MultipleOfPatch(spec, key))),
        new(["gen_trt_engine.tensorrt.min_batch_size", "gen_trt_engine.tensorrt.opt_batch_size", "gen_trt_engine.tensorrt.max_batch_size"],
            OrderedBatchProfile),
        new(["pipeline.deploy.target", "gen_trt_engine.batch_size", "gen_trt_engine.tensorrt.max_batch_size", "inference.batch_size"],
            InferenceBatchFitsEngine),
        new(["dataset.batch_size", "train.loss.koleo_loss_weight"], KoLeoNeedsTwoImages),
        new(["train.num_gpus", "train.gpu_ids"], OneGpuIdPerGpu),
        new(["train.loss.dino_loss_weight", "train.loss.ibot_loss_weight"], SomethingToLearn),
        new(["model.backbone.teacher_type", "model.backbone.student_type", "model.distill.enable"], StudentMatchesTeacherWithoutDistillation),
        new(["train.optim.lr", "train.optim.min_lr"], MinLrBelowLr),
        new(["train.optim.warmup_epochs", "train.num_epochs"], WarmupWithinRun),
        new(["model.backbone.teacher_type", "model.backbone.student_type", "model.distill.enable"], StudentNoLargerThanTeacher),
        new(["pipeline.deploy.target", "gen_trt_engine.tensorrt.data_type", "gen_trt_engine.tensorrt.layers_precision"], PrecisionsTheTargetRuns),
    ];

    private static IEnumerable<SpecError> StudentNoLargerThanTeacher(SpecEntries spec)
    {
        var (teacher, student) = (spec.String("model.backbone.teacher_type"), spec.String("model.backbone.student_type"));
        if (spec.Bool("model.distill.enable") && Array.IndexOf(Backbones, student) > Array.IndexOf(Backbones, teacher))
            yield return spec.Error("model.backbone.student_type",
                $"'{student}' is larger than model.backbone.teacher_type '{teacher}'; distillation trains a smaller (or equal) student, "
                + $"so pick one of: {string.Join(", ", Backbones.TakeWhile(name => name != teacher).Append(teacher))}");
    }

    private static IEnumerable<SpecError> PrecisionsTheTargetRuns(SpecEntries spec)
    {
        const string dataType = "gen_trt_engine.tensorrt.data_type", layers = "gen_trt_engine.tensorrt.layers_precision";
        var onnxRuntime = spec.String("pipeline.deploy.target") == "onnxruntime";
        var precision = spec.String(dataType);
        if (onnxRuntime && precision == "fp16")
            yield return spec.Error(dataType,
                "'fp16' needs pipeline.deploy.target=tensorrt: ONNX Runtime's CPU artifact is built in fp32 or int8");
        var entries = spec.Strings(layers);
        if (precision != "int8" && entries.FirstOrDefault(entry => entry.EndsWith(":int8", StringComparison.Ordinal)) is { } int8)
            yield return spec.Error(layers,
                $"'{int8}' asks for int8 but {dataType} is {precision}: int8 layers come from the calibrated Q/DQ model built when "
                + $"{dataType} is int8");
        if (onnxRuntime && entries.FirstOrDefault(entry => entry.EndsWith(":fp16", StringComparison.Ordinal)) is { } fp16)
            yield return spec.Error(layers,
                $"'{fp16}' asks for fp16, which the onnxruntime target cannot run; use fp32 to keep a layer out of int8");
    }

    private static IEnumerable<SpecError> WarmupWithinRun(SpecEntries spec)
    {
        var (warmup, epochs) = (spec.Int("train.optim.warmup_epochs"), spec.Int("train.num_epochs"));
        if (warmup > epochs)
            yield return spec.Error("train.optim.warmup_epochs",
                $"{warmup} is more than train.num_epochs ({epochs}); the learning-rate warm-up must end within the run");
    }

    private static KeyRule K(string key) => new(key);

    private static bool IsCheckpointSelector(SpecValue value)
    {
        var text = value.String ?? "";
        return text is "latest" or "best"
            || (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var epoch) && epoch >= 1)
            || text.IndexOfAny(['/', '\\', '.']) >= 0;
    }

    private static bool AreGpuIds(SpecValue value)
    {
        var ids = value.Items.Select(item => item.Number).ToList();
        return ids.All(id => id >= 0 && id == Math.Floor(id) && id < int.MaxValue) && ids.Distinct().Count() == ids.Count;
    }

    private static bool IsBatchOrDynamic(SpecValue value) => value.Int == -1 || value.Int >= 1;

    private static bool AreLayerPrecisions(SpecValue value) =>
        value.Items.All(item =>
        {
            var text = item.String ?? "";
            var colon = text.LastIndexOf(':');
            return colon > 0 && Precisions.Contains(text[(colon + 1)..]) && text[..colon].IndexOfAny([',', ':']) < 0;
        });

    private static IEnumerable<SpecError> MultipleOfPatch(SpecEntries spec, string key)
    {
        var side = spec.Int(key);
        var patch = spec.Int(PatchSizeKey);
        if (side % patch == 0 && side >= patch)
            yield break;
        var below = Math.Max(patch, side / patch * patch);
        var above = below + patch;
        yield return spec.Error(key,
            $"{side} is not a multiple of {PatchSizeKey} ({patch}); the nearest valid values are {below} and {above}");
    }

    private static IEnumerable<SpecError> OrderedBatchProfile(SpecEntries spec)
    {
        const string prefix = "gen_trt_engine.tensorrt.";
        var (min, opt, max) = (spec.Int(prefix + "min_batch_size"), spec.Int(prefix + "opt_batch_size"), spec.Int(prefix + "max_batch_size"));
        if (min <= opt && opt <= max)
            yield break;
        var key = min > opt ? prefix + "opt_batch_size" : prefix + "max_batch_size";
        yield return spec.Error(key,
            $"the TensorRT profile needs min_batch_size <= opt_batch_size <= max_batch_size, got {min} / {opt} / {max}");
    }

    private static IEnumerable<SpecError> InferenceBatchFitsEngine(SpecEntries spec)
    {
        if (spec.String("pipeline.deploy.target") != "tensorrt")
            yield break;
        var batch = spec.Int("inference.batch_size");
        var engineBatch = spec.Int("gen_trt_engine.batch_size");
        var limit = engineBatch == -1 ? spec.Int("gen_trt_engine.tensorrt.max_batch_size") : engineBatch;
        var limitKey = engineBatch == -1 ? "gen_trt_engine.tensorrt.max_batch_size" : "gen_trt_engine.batch_size";
        if (batch > limit)
            yield return spec.Error("inference.batch_size",
                $"{batch} exceeds the TensorRT engine's batch limit {limitKey} = {limit}; lower it or raise {limitKey}");
    }

    private static IEnumerable<SpecError> KoLeoNeedsTwoImages(SpecEntries spec)
    {
        if (spec.Int("dataset.batch_size") < 2 && spec.Number("train.loss.koleo_loss_weight") > 0)
            yield return spec.Error("dataset.batch_size",
                $"{spec.Int("dataset.batch_size")} is too small while train.loss.koleo_loss_weight is "
                + $"{SpecValue.FormatFloat(spec.Number("train.loss.koleo_loss_weight"))}: the KoLeo loss needs at least 2 images "
                + "per batch (it is NaN for 1); use batch_size >= 2 or set train.loss.koleo_loss_weight=0");
    }

    private static IEnumerable<SpecError> OneGpuIdPerGpu(SpecEntries spec)
    {
        var (gpus, ids) = (spec.Int("train.num_gpus"), spec.Numbers("train.gpu_ids"));
        if (ids.Count > 0 && ids.Count != gpus)
            yield return spec.Error("train.gpu_ids",
                $"lists {ids.Count} GPU(s) but train.num_gpus is {gpus}; list one CUDA device per GPU, or leave it empty for 0 to {gpus - 1}");
    }

    private static IEnumerable<SpecError> SomethingToLearn(SpecEntries spec)
    {
        if (spec.Number("train.loss.dino_loss_weight") == 0 && spec.Number("train.loss.ibot_loss_weight") == 0)
            yield return spec.Error("train.loss.dino_loss_weight",
                "train.loss.dino_loss_weight and train.loss.ibot_loss_weight are both 0, so nothing would be learned; make one of them > 0");
    }

    private static IEnumerable<SpecError> StudentMatchesTeacherWithoutDistillation(SpecEntries spec)
    {
        var teacher = spec.String("model.backbone.teacher_type");
        var student = spec.String("model.backbone.student_type");
        if (!spec.Bool("model.distill.enable") && teacher != student)
            yield return spec.Error("model.backbone.student_type",
                $"'{student}' differs from model.backbone.teacher_type '{teacher}' but distillation is off: training keeps "
                + "student and teacher the same architecture; set pipeline.stages.distill=true to distill into "
                + $"'{student}', or set both to the same backbone");
    }

    private static IEnumerable<SpecError> MinLrBelowLr(SpecEntries spec)
    {
        var lr = spec.Number("train.optim.lr");
        var minLr = spec.Number("train.optim.min_lr");
        if (minLr > lr)
            yield return spec.Error("train.optim.min_lr",
                $"{SpecValue.FormatFloat(minLr)} is above train.optim.lr ({SpecValue.FormatFloat(lr)}); the cosine schedule decays from lr down to min_lr");
    }
}
