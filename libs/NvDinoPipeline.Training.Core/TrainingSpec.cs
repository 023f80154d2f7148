using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Ssl.Losses;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Training.Core.Data;

namespace NvDinoPipeline.Training.Core;

/// <summary>
/// A training run as the spec describes it (TAO's <c>nvdinov2 train</c> keys): the trainer, the data pipeline and
/// the run settings. <see cref="Read"/> reports every unusable key at once, each by its dotted name.
/// </summary>
public sealed record TrainingSpec
{
    public required SslTrainerOptions Trainer { get; init; }

    public required SslDataOptions Data { get; init; }

    /// <summary><c>train.checkpoint_interval</c>, in epochs.</summary>
    public required int CheckpointInterval { get; init; }

    /// <summary><c>train.checkpoint_interval_minutes</c>: time between checkpoints within an epoch; null for none.</summary>
    public TimeSpan? CheckpointEvery { get; init; }

    /// <summary><c>train.num_threads</c>; 0 keeps libtorch's default.</summary>
    public required int NumThreads { get; init; }

    /// <summary><c>train.num_gpus</c>: data-parallel replicas, one per GPU (<see cref="SslTrainerOptions.DataParallelReplicas"/>).</summary>
    public required int NumGpus { get; init; }

    public required int NumNodes { get; init; }

    /// <summary><c>train.seed</c> was -1: the run picked its seed (<see cref="SslTrainerOptions.Seed"/>) itself.</summary>
    public required bool SeedChosen { get; init; }

    /// <summary><c>train.pretrained_model_path</c>: backbone weights to start from (path or URI), or null.</summary>
    public string? PretrainedModelPath { get; init; }

    /// <summary><c>train.allow_partial_pretrained_load</c>: accept pretrained weights that cover only part of the backbone.</summary>
    public bool AllowPartialPretrainedLoad { get; init; }

    /// <summary><c>train.resume_training_checkpoint_path</c>: a training checkpoint to continue (path or URI), or null.</summary>
    public string? ResumeCheckpointPath { get; init; }

    /// <summary>
    /// Reads a resolved spec. Allowed values and cross-key rules are checked once, by the spec rules when the pipeline
    /// starts; what remains here is what only the model code can tell (a backbone that cannot be built, say).
    /// </summary>
    /// <param name="unfixedSeed">Seed to use when <c>train.seed</c> is -1; a fresh one when null.</param>
    /// <exception cref="SpecValidationException">Every key that is missing, of the wrong type or not supported by the trainer.</exception>
    public static TrainingSpec Read(ResolvedSpec spec, long? unfixedSeed = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var r = new Reader(spec);

        var patchSize = r.Get<int>("model.backbone.patch_size");
        var ffn = r.Get<string>("model.backbone.ffn_layer");
        var backbone = r.Build("model.backbone.teacher_type", () => BackboneConfig.FromName(
            r.Get<string>("model.backbone.teacher_type") ?? "",
            patchSize,
            r.Get<int>("model.backbone.img_size"),
            ffn switch { "swiglu" or "swiglufused" => FfnLayer.SwiGlu, "mlp" => FfnLayer.Mlp, _ => throw new ArgumentException($"unknown ffn_layer '{ffn}'") },
            r.Get<int>("model.backbone.num_register_tokens"),
            r.Get<double?>("model.backbone.layerscale_init"),
            r.Get<double>("model.backbone.drop_path_rate")) with
        {
            InterpolateOffset = r.Get<double>("model.backbone.interpolate_offset"),
            InterpolateAntialias = r.Get<bool>("model.backbone.interpolate_antialias"),
        });

        var head = new SslHeadOptions
        {
            NumLayers = r.Get<int>("model.head.num_layers"),
            HiddenDim = r.Get<int>("model.head.hidden_dim"),
            BottleneckDim = r.Get<int>("model.head.bottleneck_dim"),
            NumPrototypes = r.Get<int>("model.head.num_prototypes"),
        };

        var epochs = r.Get<int>("train.num_epochs");
        var optim = new SslOptimOptions
        {
            BaseLr = r.Get<double>("train.optim.lr"),
            ScalingRule = r.Get<string>("train.optim.scaling_rule") switch
            {
                "sqrt_wrt_1024" => LearningRateScalingRule.SqrtWrt1024,
                "linear_wrt_1024" => LearningRateScalingRule.LinearWrt1024,
                "none" => LearningRateScalingRule.None,
                var other => r.Fail("train.optim.scaling_rule", $"'{other}' is not a scaling rule; use sqrt_wrt_1024, linear_wrt_1024 or none", LearningRateScalingRule.None),
            },
            MinLr = r.Get<double>("train.optim.min_lr"),
            WarmupEpochs = r.Get<int>("train.optim.warmup_epochs"),
            WeightDecay = r.Get<double>("train.optim.weight_decay"),
            WeightDecayEnd = r.Get<double>("train.optim.weight_decay_end"),
            LayerwiseDecay = r.Get<double>("train.optim.layerwise_decay"),
            PatchEmbedLrMult = r.Get<double>("train.optim.patch_embed_lr_mult"),
            ClipGradNorm = r.Get<double>("train.optim.clip_grad_norm"),
            FreezeLastLayerEpochs = r.Get<int>("train.optim.freeze_last_layer_epochs"),
            Beta1 = r.Get<double>("train.optim.adamw_beta1"),
            Beta2 = r.Get<double>("train.optim.adamw_beta2"),
        };

        var teacher = new SslTeacherOptions
        {
            MomentumTeacher = r.Get<double>("train.teacher.momentum_teacher"),
            FinalMomentumTeacher = r.Get<double>("train.teacher.final_momentum_teacher"),
            WarmupTeacherTemp = r.Get<double>("train.teacher.warmup_teacher_temp"),
            TeacherTemp = r.Get<double>("train.teacher.teacher_temp"),
            WarmupTeacherTempEpochs = r.Get<int>("train.teacher.warmup_teacher_temp_epochs"),
        };

        var maskRatio = r.Get<IReadOnlyList<double>>("train.loss.mask_ratio_min_max");
        var loss = new SslLossOptions
        {
            DinoLossWeight = r.Get<double>("train.loss.dino_loss_weight"),
            IbotLossWeight = r.Get<double>("train.loss.ibot_loss_weight"),
            KoleoLossWeight = r.Get<double>("train.loss.koleo_loss_weight"),
            Centering = r.Get<string>("train.loss.centering") switch
            {
                "softmax" or "centering" => TeacherCentering.Softmax,
                "sinkhorn_knopp" => TeacherCentering.SinkhornKnopp,
                var other => r.Fail("train.loss.centering", $"'{other}' is not a centering; use softmax or sinkhorn_knopp", TeacherCentering.Softmax),
            },
            StudentTemp = r.Get<double>("train.loss.student_temp"),
            CenterMomentum = r.Get<double>("train.loss.center_momentum"),
        };

        // The spec rules allow auto, fp32 and bf16 only (fp16 is refused when the pipeline starts).
        var precision = r.Get<string>("train.precision") switch
        {
            "bf16" => TrainingPrecision.Bf16,
            "fp32" => TrainingPrecision.Fp32,
            _ => TrainingPrecision.Auto,
        };

        var batchSize = r.Get<int>("dataset.batch_size");
        var globalScale = r.Get<IReadOnlyList<double>>("dataset.transform.global_crops_scale");
        var localScale = r.Get<IReadOnlyList<double>>("dataset.transform.local_crops_scale");
        var crops = r.Build("dataset.transform", () =>
        {
            var options = new MultiCropOptions
            {
                GlobalCropsScale = Pair(globalScale),
                GlobalCropsSize = r.Get<int>("dataset.transform.global_crops_size"),
                LocalCropsNumber = r.Get<int>("dataset.transform.n_local_crops"),
                LocalCropsScale = Pair(localScale),
                LocalCropsSize = r.Get<int>("dataset.transform.local_crops_size"),
            };
            options.Validate();
            return options;
        });

        var seed = r.Get<long>("train.seed");
        var seedChosen = seed < 0;
        if (seedChosen)
            seed = unfixedSeed ?? TrainingSeeds.Fresh();

        var numGpus = r.Get<int>("train.num_gpus");
        var numNodes = r.Get<int>("train.num_nodes");
        var gpuIds = r.Get<IReadOnlyList<double>>("train.gpu_ids")?.Select(id => (int)id).ToArray() ?? [];
        var checkpointInterval = r.Get<int>("train.checkpoint_interval");
        var checkpointMinutes = r.Get<double?>("train.checkpoint_interval_minutes");
        var numThreads = r.Get<int>("train.num_threads");
        var workers = r.Get<int>("dataset.workers");
        var pretrained = r.Get<string?>("train.pretrained_model_path");
        var resume = r.Get<string?>("train.resume_training_checkpoint_path");
        var allowPartial = r.Get<bool>("train.allow_partial_pretrained_load");

        r.ThrowIfFailed();
        var trainer = new SslTrainerOptions
        {
            Backbone = backbone!,
            Head = head,
            Optim = optim,
            Teacher = teacher,
            Loss = loss,
            Epochs = epochs,
            BatchSize = batchSize,
            // One job runs on one host (the spec rules refuse train.num_nodes above 1): a replica per GPU.
            DataParallelReplicas = Math.Max(numGpus, 1),
            GpuIds = gpuIds,
            Seed = seed,
            Precision = precision,
        };
        // dataset.batch_size is per GPU, as in TAO: a step draws it for every replica.
        var data = new SslDataOptions
        {
            BatchSize = batchSize * Math.Max(numGpus, 1),
            Crops = crops!,
            PatchSize = patchSize,
            MaskRatioMin = maskRatio is { Count: 2 } ? maskRatio[0] : 0.1,
            MaskRatioMax = maskRatio is { Count: 2 } ? maskRatio[1] : 0.5,
            MaskSampleProbability = r.Get<double>("train.loss.mask_sample_probability"),
            Workers = workers,
            PrefetchBatches = Math.Max(2, Math.Min(workers, Environment.ProcessorCount) + 1),
        };
        r.Check("model.backbone", trainer.Validate);
        r.Check("dataset.transform", data.Validate);
        r.ThrowIfFailed();

        return new TrainingSpec
        {
            Trainer = trainer,
            Data = data,
            CheckpointInterval = checkpointInterval,
            CheckpointEvery = checkpointMinutes is > 0 ? TimeSpan.FromMinutes(checkpointMinutes.Value) : null,
            NumThreads = numThreads,
            NumGpus = numGpus,
            NumNodes = numNodes,
            SeedChosen = seedChosen,
            PretrainedModelPath = string.IsNullOrWhiteSpace(pretrained) ? null : pretrained,
            AllowPartialPretrainedLoad = allowPartial,
            ResumeCheckpointPath = string.IsNullOrWhiteSpace(resume) ? null : resume,
        };
    }

    private static (double Min, double Max) Pair(IReadOnlyList<double>? values) =>
        values is { Count: 2 } ? (values[0], values[1]) : throw new ArgumentException($"needs two values [min, max], got {values?.Count ?? 0}");

    /// <summary>Reads keys and collects every problem instead of stopping at the first.</summary>
    private sealed class Reader(ResolvedSpec spec)
    {
        private readonly List<SpecError> errors = [];

        public T? Get<T>(string key)
        {
            try
            {
                return spec.Get<T>(key);
            }
            catch (Exception exception) when (exception is KeyNotFoundException or InvalidCastException)
            {
                errors.Add(new SpecError(key, exception.Message));
                return default;
            }
        }

        public T? Build<T>(string key, Func<T> build) where T : class
        {
            try
            {
                return build();
            }
            catch (ArgumentException exception)
            {
                errors.Add(new SpecError(key, exception.Message));
                return null;
            }
        }

        public void Check(string key, Action validate)
        {
            if (errors.Count > 0)
                return;
            try
            {
                validate();
            }
            catch (ArgumentException exception)
            {
                errors.Add(new SpecError(key, exception.Message));
            }
        }

        public T Fail<T>(string key, string message, T fallback)
        {
            errors.Add(new SpecError(key, message));
            return fallback;
        }

        public void ThrowIfFailed()
        {
            if (errors.Count > 0)
                throw new SpecValidationException(errors.DistinctBy(e => (e.Key, e.Message)).ToList());
        }
    }
}
