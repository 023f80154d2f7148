using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Distillation.Tests;

/// <summary>
/// Distillation on several replicas, the CPU device standing in for GPUs, against one device on the whole batch.
/// Stochastic depth is off and the KoLeo weight 0: KoLeo is computed per replica, as DINOv2 computes it per rank.
/// </summary>
public sealed class DistillationDataParallelTests : IDisposable
{
    private const int PerReplica = 2;

    private readonly TempDirectory folder = new("nvdino-distillation-dp");

    public void Dispose() => folder.Dispose();

    [Theory]
    [InlineData(2, false)]
    [InlineData(3, false)]
    [InlineData(2, true)]
    public void Replicas_sharing_a_batch_take_the_step_one_device_takes_on_the_whole_batch(int replicas, bool disableMasking)
    {
        var teacherCheckpoint = TinyDistillation.TrainedCheckpoint(folder.Combine("teacher"), TinyDistillation.Teacher);
        var total = PerReplica * replicas;
        var loader = new SslBatchLoader(TestImages.Blocks(total * 2), TinyDistillation.Data(batchSize: total), seed: 7);
        using var parallel = Trainer(replicas, PerReplica, disableMasking, loader.IterationsPerEpoch);
        using var single = Trainer(1, total, disableMasking, loader.IterationsPerEpoch);
        parallel.LoadTeacher(teacherCheckpoint);
        single.LoadTeacher(teacherCheckpoint);
        Assert.Equal(replicas, parallel.Devices.Count);

        for (var step = 0; step < 2; step++)
        {
            using var batch = loader.Build(0, step);
            var expected = single.Step(batch);
            var actual = parallel.Step(batch);
            foreach (var (name, value) in expected.Metrics.Where(m => m.Key != TrainingMetrics.KoleoLoss))
                Assert.True(Math.Abs(actual[name] - value) <= 1e-5 + 1e-4 * Math.Abs(value), $"step {step}: {name} {actual[name]:R}, one device {value:R}");
            AssertSame(single.Student, parallel.Student, "gradient", p => p.grad!);
            AssertSame(single.Student, parallel.Student, "student", p => p);
            AssertSame(single.StudentEma, parallel.StudentEma, "student EMA", p => p);
            Assert.True(parallel.DinoLoss.Center.allclose(single.DinoLoss.Center, rtol: 1e-4, atol: 1e-6), $"step {step}: DINO center");
            Assert.True(parallel.IbotLoss.Center.allclose(single.IbotLoss.Center, rtol: 1e-4, atol: 1e-6), $"step {step}: iBOT center");
        }
    }

    private static DistillationTrainer Trainer(int replicas, int perReplica, bool disableMasking, long iterations) => new(new DistillationTrainerOptions
    {
        Trainer = TinyDistillation.Recipe(TinyDistillation.Teacher with { DropPathRate = 0 }, batchSize: perReplica) with
        {
            Optim = new SslOptimOptions { BaseLr = 0.05, WarmupEpochs = 0, FreezeLastLayerEpochs = 0, MinLr = 1e-4 },
            Loss = new SslLossOptions { KoleoLossWeight = 0 },
            DataParallelReplicas = replicas,
            ReplicasOnCpu = replicas > 1,
        },
        Student = TinyDistillation.Student with { DropPathRate = 0 },
        DisableMasking = disableMasking,
        // Widths differ (64 and 32): the projection onto the teacher's width is trained on every replica too.
        ClsFeatureWeight = 1.0,
        PatchFeatureWeight = 1.0,
    }, iterations);

    private static void AssertSame(SslNetwork expected, SslNetwork actual, string what, Func<Tensor, Tensor> value)
    {
        using var scope = torch.NewDisposeScope();
        var byName = actual.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in expected.named_parameters())
        {
            var other = byName[name];
            if (what == "gradient")
            {
                Assert.Equal(parameter.grad is null, other.grad is null);
                if (parameter.grad is null)
                    continue;
            }
            // Float rounding differs between the layouts (sums in another order): within 1e-4 of the tensor's scale.
            var a = value(parameter);
            var b = value(other);
            var difference = (a - b).abs().max().item<float>();
            var size = a.abs().max().item<float>();
            Assert.True(difference <= 1e-4 * size + 1e-6, $"{what} {name} differs by up to {difference:G3} (largest element {size:G3})");
        }
    }
}
