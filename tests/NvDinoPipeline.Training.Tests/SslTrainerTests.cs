using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Tests;

public sealed class SslTrainerTests
{
    [Fact]
    public void Each_step_reports_finite_loss_terms_that_sum_to_the_weighted_total()
    {
        var options = TinyTraining.Trainer();
        var loader = new SslBatchLoader(TestImages.Blocks(8), TinyTraining.Data(), options.Seed);
        using var trainer = new SslTrainer(options, loader.IterationsPerEpoch);

        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
            {
                var step = trainer.Step(batch);
                foreach (var (name, value) in step.Metrics)
                    Assert.True(double.IsFinite(value), $"{name} = {value} at step {step.Step}");
                var weighted = step[TrainingMetrics.DinoLocalLoss] + step[TrainingMetrics.DinoGlobalLoss]
                    + step[TrainingMetrics.IbotLoss] + 0.1 * step[TrainingMetrics.KoleoLoss];
                Assert.Equal(weighted, step[TrainingMetrics.Loss], 4);
                Assert.True(step[TrainingMetrics.MaskedPatches] > 0, "the tiny masks should cover some patches");
                Assert.True(step[TrainingMetrics.IbotLoss] > 0);
            }
        }
        Assert.Equal(2, trainer.GlobalStep);
    }

    [Fact]
    public void The_teacher_follows_the_student_by_ema_and_the_last_layer_waits_for_the_freeze_to_end()
    {
        var options = TinyTraining.Trainer(epochs: 2) with { Optim = new SslOptimOptions { BaseLr = 0.05, WarmupEpochs = 0, FreezeLastLayerEpochs = 1 } };
        var loader = new SslBatchLoader(TestImages.Blocks(4), TinyTraining.Data(), options.Seed);
        using var trainer = new SslTrainer(options, loader.IterationsPerEpoch);
        var lastLayer = trainer.Student.named_parameters().Single(p => p.name == "dino_head.last_layer.weight_v").parameter;
        var qkv = trainer.Student.named_parameters().Single(p => p.name == "backbone.blocks.0.attn.qkv.weight").parameter;
        var teacherQkv = trainer.Teacher.named_parameters().Single(p => p.name == "backbone.blocks.0.attn.qkv.weight").parameter;
        using var lastLayerBefore = lastLayer.detach().clone();
        using var qkvBefore = qkv.detach().clone();
        using var teacherBefore = teacherQkv.detach().clone();

        using (var batch = loader.Build(0, 0))
            trainer.Step(batch);
        Assert.True(lastLayer.equal(lastLayerBefore).all().item<bool>(), "the prototypes must not move during the freeze epoch");
        Assert.False(qkv.allclose(qkvBefore), "the student backbone should learn from the first step");
        var momentum = trainer.Schedules.TeacherMomentum[0];
        using var expected = momentum * teacherBefore + (1 - momentum) * qkv;
        Assert.True(teacherQkv.allclose(expected, rtol: 0, atol: 1e-6), "teacher = m·teacher + (1 − m)·student");

        using (var batch = loader.Build(1, 0))
            trainer.Step(batch);
        Assert.False(lastLayer.allclose(lastLayerBefore), "the prototypes learn once the freeze is over");
    }

    [Fact]
    public void Training_on_a_small_dataset_brings_the_student_closer_to_a_fixed_teacher()
    {
        var options = TinyTraining.Trainer(epochs: 8) with
        {
            Teacher = new SslTeacherOptions { MomentumTeacher = 1.0, WarmupTeacherTempEpochs = 0, WarmupTeacherTemp = 0.07 },
            Optim = new SslOptimOptions { BaseLr = 0.2, WarmupEpochs = 0, FreezeLastLayerEpochs = 0 },
        };
        var loader = new SslBatchLoader(TestImages.Blocks(16), TinyTraining.Data(), options.Seed);
        using var trainer = new SslTrainer(options, loader.IterationsPerEpoch);
        // The teacher is held fixed (momentum 1), so the student has a target it can reach. The global DINO term is a
        // cross-entropy over 2 of the 2·1 + 2·2 = 6 student/teacher pairs; minus the teacher's entropy it is the
        // student's KL divergence from the teacher, which training must shrink.
        var perEpoch = new List<double>();
        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            var divergences = new List<double>();
            foreach (var batch in loader.Epoch(epoch))
            {
                using (batch)
                {
                    var step = trainer.Step(batch);
                    divergences.Add(step[TrainingMetrics.DinoGlobalLoss] * 6 / 2 - step[TrainingMetrics.TeacherEntropy]);
                }
            }
            perEpoch.Add(divergences.Average());
        }
        Assert.True(perEpoch[^1] < 0.5 * perEpoch[0], $"KL(teacher || student) per epoch: {string.Join(", ", perEpoch.Select(l => l.ToString("F3")))}");
    }

    [Fact]
    public void A_run_resumed_from_a_checkpoint_takes_the_same_steps_as_the_uninterrupted_run()
    {
        using var folder = new TempDirectory("nvdino-resume");
        var options = TinyTraining.Trainer(epochs: 2);
        var images = TestImages.Blocks(16);
        var loader = new SslBatchLoader(images, TinyTraining.Data(), options.Seed);
        const int total = 8, interruptedAt = 5;

        var uninterrupted = new List<double>();
        Tensor finalTeacher;
        using (var trainer = new SslTrainer(options, loader.IterationsPerEpoch))
        {
            for (var step = 0; step < total; step++)
            {
                using var batch = loader.Build(step / 4, step % 4);
                uninterrupted.Add(trainer.Step(batch)[TrainingMetrics.Loss]);
            }
            finalTeacher = trainer.Teacher.Backbone.named_parameters().Single(p => p.name == "blocks.1.mlp.fc2.weight").parameter.detach().clone();
        }

        var resumed = new List<double>();
        var path = folder.Combine("interrupted.ckpt");
        using (var first = new SslTrainer(options, loader.IterationsPerEpoch))
        {
            for (var step = 0; step < interruptedAt; step++)
            {
                using var batch = loader.Build(step / 4, step % 4);
                resumed.Add(first.Step(batch)[TrainingMetrics.Loss]);
            }
            first.SaveCheckpointFile(path);
        }
        // Other work between the two halves must not matter: the torch generator is seeded per step.
        torch.manual_seed(12345);
        using (var second = new SslTrainer(options, loader.IterationsPerEpoch))
        {
            var state = second.LoadCheckpoint(path);
            Assert.Equal(interruptedAt, state.GlobalStep);
            Assert.Equal(interruptedAt, second.GlobalStep);
            for (var step = interruptedAt; step < total; step++)
            {
                using var batch = loader.Build(step / 4, step % 4);
                resumed.Add(second.Step(batch)[TrainingMetrics.Loss]);
            }
            var teacher = second.Teacher.Backbone.named_parameters().Single(p => p.name == "blocks.1.mlp.fc2.weight").parameter;
            Assert.True(teacher.allclose(finalTeacher, rtol: 1e-5, atol: 1e-6), "the resumed teacher ends where the uninterrupted one did");
        }

        for (var step = 0; step < total; step++)
            Assert.True(Math.Abs(uninterrupted[step] - resumed[step]) <= 1e-5 * Math.Abs(uninterrupted[step]),
                $"step {step}: uninterrupted {uninterrupted[step]:R}, resumed {resumed[step]:R}");
        finalTeacher.Dispose();
    }

    [Fact]
    public void The_checkpoint_is_read_by_backbone_loaders_as_the_teacher_with_its_architecture()
    {
        using var folder = new TempDirectory("nvdino-ckpt");
        var options = TinyTraining.Trainer(epochs: 1);
        var loader = new SslBatchLoader(TestImages.Blocks(8), TinyTraining.Data(), options.Seed);
        using var trainer = new SslTrainer(options, loader.IterationsPerEpoch);
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
                trainer.Step(batch);
        }

        var saved = trainer.SaveCheckpoint(folder.Path);
        Assert.Equal("epoch_001.ckpt", Path.GetFileName(saved.CheckpointPath));
        Assert.Equal(TinyTraining.Backbone, BackboneWeights.ReadConfig(saved.CheckpointPath));
        using var backbone = new VisionTransformer(TinyTraining.Backbone);
        var report = BackboneWeights.Load(backbone, saved.CheckpointPath);
        Assert.Equal("teacher.backbone.", report.KeyPrefix);
        Assert.True(report.IsComplete);
        var teacher = trainer.Teacher.Backbone.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in backbone.named_parameters())
            Assert.True(parameter.equal(teacher[name]).all().item<bool>(), name);

        var state = TrainingCheckpointFile.ReadState(saved.CheckpointPath);
        Assert.Equal((1, 2L, 7L), (state.Epoch, state.GlobalStep, state.Seed));
        Assert.True(state.Metrics.Count == 0 || state.Metrics.ContainsKey(TrainingMetrics.Loss));
        var teacherFile = saved.BackbonePaths.Single(p => p.EndsWith(SslTrainer.TeacherBackboneFileName, StringComparison.Ordinal));
        Assert.Equal(TinyTraining.Backbone, BackboneWeights.ReadConfig(teacherFile));
        Assert.False(TrainingCheckpointFile.IsTrainingCheckpoint(teacherFile));
    }

    [Fact]
    public void Bf16_training_computes_in_bfloat16_and_keeps_float32_weights()
    {
        var options = TinyTraining.Trainer(precision: TrainingPrecision.Bf16);
        var loader = new SslBatchLoader(TestImages.Blocks(8), TinyTraining.Data(), options.Seed);
        using var trainer = new SslTrainer(options, loader.IterationsPerEpoch);
        var qkv = trainer.Student.named_parameters().Single(p => p.name == "backbone.blocks.0.attn.qkv.weight").parameter;
        using var before = qkv.detach().clone();
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
                Assert.True(double.IsFinite(trainer.Step(batch)[TrainingMetrics.Loss]));
        }
        Assert.All(trainer.Student.parameters().Concat(trainer.Teacher.parameters()), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.False(qkv.allclose(before));
    }

    [Fact]
    public void Pretrained_backbone_weights_missing_parameters_are_refused_unless_partial_loading_is_allowed()
    {
        using var folder = new TempDirectory("nvdino-pretrained");
        var path = folder.Combine("pretrained.safetensors");
        torch.manual_seed(3);
        using (var source = new VisionTransformer(TinyTraining.Backbone with { LayerScaleInit = null }))
            BackboneWeights.Save(source, path);
        using var sourceCopy = new VisionTransformer(TinyTraining.Backbone with { LayerScaleInit = null });
        BackboneWeights.Load(sourceCopy, path);

        using var trainer = new SslTrainer(TinyTraining.Trainer(), iterationsPerEpoch: 2);
        var refused = Assert.Throws<IncompleteCheckpointException>(() => trainer.LoadPretrainedBackbone(path));
        Assert.Contains("blocks.0.ls1.gamma", refused.Message);
        var report = trainer.LoadPretrainedBackbone(path, allowPartial: true);

        Assert.Contains("blocks.0.ls1.gamma", report.Missing);
        Assert.InRange(report.LoadedParameterFraction, 0.5, 0.9999);
        Assert.Empty(report.Unexpected);
        var expected = sourceCopy.named_parameters().Single(p => p.name == "blocks.1.attn.proj.weight").parameter;
        foreach (var network in new[] { trainer.Student, trainer.Teacher })
        {
            var loaded = network.Backbone.named_parameters().Single(p => p.name == "blocks.1.attn.proj.weight").parameter;
            Assert.True(loaded.equal(expected).all().item<bool>());
        }
    }

    [Fact]
    public void A_checkpoint_of_another_width_is_refused_naming_the_tensor_and_changes_nothing()
    {
        using var folder = new TempDirectory("nvdino-mismatch");
        var path = folder.Combine("wide.ckpt");
        var wide = TinyTraining.Trainer() with { Backbone = TinyTraining.Backbone with { EmbedDim = 32 } };
        using (var other = new SslTrainer(wide, iterationsPerEpoch: 2))
            other.SaveCheckpointFile(path);

        using var trainer = new SslTrainer(TinyTraining.Trainer(), iterationsPerEpoch: 2);
        var parameter = trainer.Student.named_parameters().Single(p => p.name == "backbone.cls_token").parameter;
        using var before = parameter.detach().clone();
        var error = Assert.Throws<TensorShapeMismatchException>(() => trainer.LoadCheckpoint(path));
        Assert.StartsWith("student.backbone.", error.TensorName);
        Assert.True(parameter.equal(before).all().item<bool>());
        Assert.Equal(0, trainer.GlobalStep);
    }
}
