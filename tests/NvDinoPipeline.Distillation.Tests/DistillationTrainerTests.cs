using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;

namespace NvDinoPipeline.Distillation.Tests;

public sealed class DistillationTrainerTests : IDisposable
{
    private readonly TempDirectory folder = new("nvdino-distillation-trainer");

    public void Dispose() => folder.Dispose();

    [Theory]
    [InlineData(false, 0.0)]
    [InlineData(true, 1.0)]
    public async Task Distilling_a_trained_teacher_gives_student_and_ema_backbones_that_load_and_a_finite_changing_loss(bool disableMasking, double featureWeight)
    {
        var teacherCheckpoint = TinyDistillation.TrainedCheckpoint(folder.Combine("teacher"), TinyDistillation.Teacher);
        var images = TestImages.Blocks(8);
        var options = new DistillationTrainerOptions
        {
            Trainer = TinyDistillation.Recipe(TinyDistillation.Teacher, epochs: 3),
            Student = TinyDistillation.Student,
            DisableMasking = disableMasking,
            ClsFeatureWeight = featureWeight,
            PatchFeatureWeight = featureWeight,
        };
        using var trainer = new DistillationTrainer(options, iterationsPerEpoch: 2);
        var source = trainer.LoadTeacher(teacherCheckpoint);
        Assert.True(source.HeadsFromCheckpoint);
        var teacherBefore = trainer.Teacher.Backbone.named_parameters().ToDictionary(p => p.name, p => p.parameter.clone());

        var losses = new List<TrainingStepResult>();
        var loop = new TrainingLoop(trainer, new SslBatchLoader(images, TinyDistillation.Data(), 7),
            new TrainingLoopOptions { CheckpointDirectory = folder.Combine("student") });
        var result = await loop.RunAsync(new Recorder(losses), CancellationToken.None);

        Assert.Equal(6, losses.Count);
        Assert.All(losses, step => Assert.True(double.IsFinite(step[TrainingMetrics.Loss])));
        Assert.NotEqual(losses[0][TrainingMetrics.Loss], losses[^1][TrainingMetrics.Loss]);
        Assert.All(losses, step => Assert.True(step[TrainingMetrics.IbotLoss] != 0 || !disableMasking));
        if (featureWeight > 0)
            Assert.All(losses, step => Assert.True(step[DistillationMetrics.ClsFeatureLoss] > 0 && step[DistillationMetrics.PatchFeatureLoss] > 0));
        // The teacher stays frozen.
        foreach (var (name, parameter) in trainer.Teacher.Backbone.named_parameters())
            Assert.True(parameter.allclose(teacherBefore[name], rtol: 0, atol: 0), $"teacher parameter {name} changed");

        var studentPath = Assert.Single(result.Checkpoint.BackbonePaths, p => p.EndsWith(DistillationTrainer.StudentBackboneFileName, StringComparison.Ordinal));
        var emaPath = Assert.Single(result.Checkpoint.BackbonePaths, p => p.EndsWith(DistillationTrainer.StudentEmaBackboneFileName, StringComparison.Ordinal));
        Assert.Equal(TinyDistillation.Student, BackboneWeights.ReadConfig(studentPath));
        using var student = new VisionTransformer(TinyDistillation.Student);
        using var ema = new VisionTransformer(TinyDistillation.Student);
        Assert.True(BackboneWeights.Load(student, studentPath, new LoadOptions { Strict = true }).IsComplete);
        Assert.True(BackboneWeights.Load(ema, emaPath, new LoadOptions { Strict = true }).IsComplete);
        var studentPos = student.named_parameters().First(p => p.name == "pos_embed").parameter;
        var emaPos = ema.named_parameters().First(p => p.name == "pos_embed").parameter;
        Assert.False(studentPos.allclose(emaPos), "the EMA should lag behind the student");
    }

    [Fact]
    public void A_teacher_checkpoint_of_another_shape_fails_naming_the_file()
    {
        var wide = BackboneConfig.VitPico(14, 28) with { EmbedDim = 48, NumHeads = 2 };
        var checkpoint = TinyDistillation.TrainedCheckpoint(folder.Combine("teacher"), wide);
        using var trainer = new DistillationTrainer(new DistillationTrainerOptions
        {
            Trainer = TinyDistillation.Recipe(TinyDistillation.Teacher),
            Student = TinyDistillation.Student,
        }, iterationsPerEpoch: 2);

        var error = Assert.Throws<InvalidDataException>(() => trainer.LoadTeacher(checkpoint));
        Assert.Contains($"'{checkpoint}'", error.Message);
        Assert.Contains("64 wide", error.Message);
        Assert.Contains("48-wide", error.Message);
    }

    [Fact]
    public async Task With_masking_disabled_crops_smaller_than_img_size_distil_on_their_own_patch_grid()
    {
        // TAO's defaults: img_size 518, global crops 224. Here img_size 42 (3×3 patches), crops 28 (2×2).
        var teacher = TinyDistillation.Teacher with { ImgSize = 42 };
        var checkpoint = TinyDistillation.TrainedCheckpoint(folder.Combine("teacher-42"), teacher);
        using var trainer = new DistillationTrainer(new DistillationTrainerOptions
        {
            Trainer = TinyDistillation.Recipe(teacher, epochs: 1),
            Student = TinyDistillation.Student with { ImgSize = 42 },
            DisableMasking = true,
        }, iterationsPerEpoch: 2);
        trainer.LoadTeacher(checkpoint);

        var losses = new List<TrainingStepResult>();
        var loop = new TrainingLoop(trainer, new SslBatchLoader(TestImages.Blocks(8), TinyDistillation.Data(), 7),
            new TrainingLoopOptions { CheckpointDirectory = folder.Combine("student-42") });
        await loop.RunAsync(new Recorder(losses), CancellationToken.None);

        Assert.Equal(2, losses.Count);
        Assert.All(losses, step => Assert.True(double.IsFinite(step[TrainingMetrics.Loss]) && step[TrainingMetrics.IbotLoss] != 0));
    }

    [Fact]
    public void A_student_larger_than_the_teacher_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => new DistillationTrainer(new DistillationTrainerOptions
        {
            Trainer = TinyDistillation.Recipe(TinyDistillation.Student),
            Student = TinyDistillation.Teacher,
        }, iterationsPerEpoch: 2));
        Assert.Contains("larger than the teacher", error.Message);
    }

    private sealed class Recorder(List<TrainingStepResult> steps) : ITrainingObserver
    {
        public void OnStep(TrainingStepResult step, double imagesPerSecond) => steps.Add(step);

        public Task OnEpochEndAsync(EpochSummary summary, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task OnCheckpointAsync(SavedCheckpoint checkpoint, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
