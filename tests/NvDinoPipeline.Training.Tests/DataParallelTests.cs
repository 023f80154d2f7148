using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Ssl.Losses;
using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Training.Core.Data;
using NvDinoPipeline.Training.Jobs;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Tests;

/// <summary>
/// Data-parallel training with several replicas on the CPU device standing in for GPUs. Stochastic depth is off and the
/// KoLeo weight 0 where one layout is compared with another: KoLeo is computed per replica, as DINOv2 computes it per rank.
/// </summary>
public sealed class DataParallelTests
{
    private const int PerReplica = 2;

    private static SslTrainerOptions Options(int replicas, int perReplica = PerReplica, double koleo = 0, double dropPath = 0) =>
        TinyTraining.Trainer(epochs: 2, batchSize: perReplica) with
        {
            Backbone = TinyTraining.Backbone with { DropPathRate = dropPath },
            Optim = new SslOptimOptions { BaseLr = 0.05, WarmupEpochs = 0, FreezeLastLayerEpochs = 0, MinLr = 1e-4 },
            Loss = new SslLossOptions { KoleoLossWeight = koleo },
            DataParallelReplicas = replicas,
            ReplicasOnCpu = replicas > 1,
        };

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Replicas_sharing_a_batch_take_the_step_one_device_takes_on_the_whole_batch(int replicas)
    {
        var total = PerReplica * replicas;
        var loader = new SslBatchLoader(TestImages.Blocks(total * 2), TinyTraining.Data(batchSize: total), seed: 7);
        using var parallel = new SslTrainer(Options(replicas), loader.IterationsPerEpoch);
        using var single = new SslTrainer(Options(1, perReplica: total), loader.IterationsPerEpoch);
        Assert.Equal(replicas, parallel.Devices.Count);
        Assert.Equal(single.Options.ScaledLr, parallel.Options.ScaledLr);

        for (var step = 0; step < 2; step++)
        {
            using var batch = loader.Build(0, step);
            Assert.True(batch.Masks.MaskedPatchCount > 0);
            var expected = single.Step(batch);
            var actual = parallel.Step(batch);
            foreach (var (name, value) in expected.Metrics.Where(m => m.Key != TrainingMetrics.KoleoLoss))
                Assert.True(Math.Abs(actual[name] - value) <= 1e-5 + 1e-4 * Math.Abs(value), $"step {step}: {name} {actual[name]:R}, one device {value:R}");
            AssertSame(single.Student, parallel.Student, "gradient", p => p.grad!, atol: 1e-6);
            AssertSame(single.Student, parallel.Student, "student", p => p, atol: 1e-5);
            AssertSame(single.Teacher, parallel.Teacher, "teacher", p => p, atol: 1e-5);
            Assert.True(parallel.DinoLoss.Center.allclose(single.DinoLoss.Center, rtol: 1e-4, atol: 1e-6), $"step {step}: DINO center differs by {(parallel.DinoLoss.Center - single.DinoLoss.Center).abs().max().item<float>():G3}, size {single.DinoLoss.Center.abs().max().item<float>():G3} vs {parallel.DinoLoss.Center.abs().max().item<float>():G3}");
            Assert.True(parallel.IbotLoss.Center.allclose(single.IbotLoss.Center, rtol: 1e-4, atol: 1e-6), $"step {step}: iBOT center");
        }
    }

    [Fact]
    public void Sinkhorn_knopp_targets_over_replicas_equal_those_of_one_device_on_the_whole_batch()
    {
        const int replicas = 2, total = PerReplica * replicas;
        var loader = new SslBatchLoader(TestImages.Blocks(total), TinyTraining.Data(batchSize: total), seed: 7);
        var sinkhorn = new SslLossOptions { KoleoLossWeight = 0, Centering = TeacherCentering.SinkhornKnopp };
        using var parallel = new SslTrainer(Options(replicas) with { Loss = sinkhorn }, loader.IterationsPerEpoch);
        using var single = new SslTrainer(Options(1, perReplica: total) with { Loss = sinkhorn }, loader.IterationsPerEpoch);

        using var batch = loader.Build(0, 0);
        var expected = single.Step(batch);
        var actual = parallel.Step(batch);
        foreach (var (name, value) in expected.Metrics.Where(m => m.Key != TrainingMetrics.KoleoLoss))
            Assert.True(Math.Abs(actual[name] - value) <= 1e-5 + 1e-4 * Math.Abs(value), $"{name} {actual[name]:R}, one device {value:R}");
        AssertSame(single.Student, parallel.Student, "gradient", p => p.grad!, atol: 1e-6);
    }

    [Fact]
    public void KoLeo_is_computed_on_each_replicas_share_as_dinov2_computes_it_per_rank()
    {
        const int replicas = 2, perReplica = 3, total = perReplica * replicas;
        var loader = new SslBatchLoader(TestImages.Blocks(total), TinyTraining.Data(batchSize: total), seed: 7);
        using var parallel = new SslTrainer(Options(replicas, perReplica, koleo: 0.1), loader.IterationsPerEpoch);
        using var batch = loader.Build(0, 0);

        // The student before the step, on each replica's share and on the whole batch (no stochastic depth: deterministic).
        double perShare, wholeBatch;
        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope())
        {
            var shares = BatchShare.Split(batch, replicas);
            perShare = shares.Average(share => KoLeoLoss.PerGlobalCrop(
                parallel.Student.Backbone.forward_features(share.GlobalCrops, share.Masks).ClsToken).item<float>());
            wholeBatch = KoLeoLoss.PerGlobalCrop(
                parallel.Student.Backbone.forward_features(batch.GlobalCrops, batch.Masks.Masks).ClsToken).item<float>();
        }

        var step = parallel.Step(batch);
        Assert.Equal(perShare, step[TrainingMetrics.KoleoLoss], 4);
        Assert.True(Math.Abs(wholeBatch - perShare) > 1e-3, $"the shares' KoLeo {perShare} should differ from the whole batch's {wholeBatch}");
    }

    [Fact]
    public void A_checkpoint_written_with_two_replicas_resumes_on_one_device_and_continues_the_same_losses()
    {
        using var folder = new TempDirectory("nvdino-dp-resume");
        const int replicas = 2, total = PerReplica * replicas;
        var loader = new SslBatchLoader(TestImages.Blocks(total * 2), TinyTraining.Data(batchSize: total), seed: 7);
        var path = folder.Combine("two_replicas.ckpt");
        var onePath = folder.Combine("one_device.ckpt");
        var continued = new List<double>();
        using (var parallel = new SslTrainer(Options(replicas), loader.IterationsPerEpoch))
        {
            using (var batch = loader.Build(0, 0))
                parallel.Step(batch);
            parallel.SaveCheckpointFile(path);
            for (var step = 1; step < 3; step++)
            {
                using var batch = loader.Build(step / 2, step % 2);
                continued.Add(parallel.Step(batch)[TrainingMetrics.Loss]);
            }
        }
        using (var reference = new SslTrainer(Options(1, perReplica: total), loader.IterationsPerEpoch))
            reference.SaveCheckpointFile(onePath);
        using (var two = TensorCheckpoint.Open(path))
        using (var one = TensorCheckpoint.Open(onePath))
            Assert.Equal(one.Entries.Keys.Order(), two.Entries.Keys.Order());

        Assert.Equal(total, TrainingCheckpointFile.ReadState(path).BatchSize);

        using var resumed = new SslTrainer(Options(1, perReplica: total), loader.IterationsPerEpoch);
        Assert.Equal(1, resumed.LoadCheckpoint(path).GlobalStep);
        for (var step = 1; step < 3; step++)
        {
            using var batch = loader.Build(step / 2, step % 2);
            var loss = resumed.Step(batch)[TrainingMetrics.Loss];
            Assert.True(Math.Abs(loss - continued[step - 1]) <= 1e-5 * Math.Abs(loss) + 1e-6, $"step {step}: resumed on one device {loss:R}, two replicas {continued[step - 1]:R}");
        }
    }

    [Fact]
    public void Bf16_replicas_compute_in_bfloat16_and_follow_one_bf16_device_to_bfloat16_rounding()
    {
        var loader = new SslBatchLoader(TestImages.Blocks(8), TinyTraining.Data(batchSize: 4), seed: 7);
        using var parallel = new SslTrainer(Options(2) with { Precision = TrainingPrecision.Bf16 }, loader.IterationsPerEpoch);
        using var single = new SslTrainer(Options(1, perReplica: 4) with { Precision = TrainingPrecision.Bf16 }, loader.IterationsPerEpoch);
        using var batch = loader.Build(0, 0);
        var expected = single.Step(batch)[TrainingMetrics.Loss];
        var actual = parallel.Step(batch)[TrainingMetrics.Loss];
        Assert.True(Math.Abs(actual - expected) <= 2e-2 * Math.Abs(expected), $"two bf16 replicas {actual:R}, one bf16 device {expected:R}");
        Assert.All(parallel.Student.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(parallel.Student.parameters().Where(p => p.grad is not null), p => Assert.Equal(ScalarType.Float32, p.grad!.dtype));
    }

    [Fact]
    public void Replicas_with_stochastic_depth_repeat_their_steps_exactly()
    {
        var loader = new SslBatchLoader(TestImages.Blocks(8), TinyTraining.Data(batchSize: 4), seed: 7);
        var runs = new List<List<double>>();
        for (var run = 0; run < 2; run++)
        {
            using var trainer = new SslTrainer(Options(2, koleo: 0.1, dropPath: 0.3), loader.IterationsPerEpoch);
            var losses = new List<double>();
            for (var step = 0; step < 2; step++)
            {
                using var batch = loader.Build(0, step);
                losses.Add(trainer.Step(batch)[TrainingMetrics.Loss]);
            }
            runs.Add(losses);
        }
        Assert.Equal(runs[0], runs[1]);
    }

    [Fact]
    public void Several_gpus_on_a_host_without_cuda_are_refused_naming_the_key()
    {
        if (torch.cuda.is_available())
            return; // the refusal is about hosts without CUDA
        var options = Options(2) with { ReplicasOnCpu = false, Device = null };
        var refused = Assert.Throws<ArgumentException>(() => TrainingDevice.ResolveReplicas(options));
        Assert.Contains("train.num_gpus is 2", refused.Message);
        Assert.Contains("no CUDA device", refused.Message);

        var mismatched = Assert.Throws<ArgumentException>(() => new SslTrainer(options with { GpuIds = [0, 1, 2] }, 1));
        Assert.Contains("train.gpu_ids lists 3", mismatched.Message);
    }

    [Fact]
    public void A_worker_without_the_gpus_a_job_asks_for_reports_it_unavailable_naming_the_key()
    {
        if (torch.cuda.is_available())
            return; // the refusal is about hosts without CUDA
        var spec = TrainingSpec.Read(TinyTraining.Spec("train.num_gpus=2"));
        var refused = Assert.Throws<StageUnavailableException>(() => JobInputs.CheckHardware(spec, null, "Training:Device", "train"));
        Assert.Contains("train.num_gpus is 2", refused.Message);
    }

    [Fact]
    public void The_spec_draws_dataset_batch_size_for_every_gpu_and_names_their_devices()
    {
        var spec = TrainingSpec.Read(TinyTraining.Spec("train.num_gpus=2", "train.gpu_ids=[1, 3]"));
        Assert.Equal((2, 4, 8), (spec.Trainer.DataParallelReplicas, spec.Trainer.BatchSize, spec.Data.BatchSize));
        Assert.Equal([1, 3], spec.Trainer.GpuIds);
        Assert.Equal(TrainingSpec.Read(TinyTraining.Spec("dataset.batch_size=8")).Trainer.ScaledLr, spec.Trainer.ScaledLr, 12);
    }

    private static void AssertSame(SslNetwork expected, SslNetwork actual, string what, Func<Tensor, Tensor> value, double atol)
    {
        using var scope = torch.NewDisposeScope();
        var byName = actual.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in expected.named_parameters())
        {
            var other = byName[name];
            Assert.Equal(parameter.grad is null, other.grad is null);
            if (what == "gradient" && parameter.grad is null)
                continue;
            var a = value(parameter);
            var b = value(other);
            // Float rounding differs between the layouts (sums in another order): within 1e-4 of the tensor's scale.
            var difference = (a - b).abs().max().item<float>();
            var size = a.abs().max().item<float>();
            Assert.True(difference <= 1e-4 * size + atol, $"{what} {name} differs by up to {difference:G3} (largest element {size:G3})");
        }
    }
}
