using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using Xunit.Abstractions;

namespace NvDinoPipeline.Training.Tests;

public sealed class PrecisionTests(ITestOutputHelper log)
{
    [Theory]
    [InlineData("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", TrainingPrecision.Bf16, "AVX512_BF16")]
    [InlineData("fpu sse2 avx2 amx_bf16 amx_tile amx_int8", TrainingPrecision.Bf16, "AMX_BF16")]
    [InlineData("fpu sse2 avx2 avx512f avx512_vnni", TrainingPrecision.Fp32, "no bfloat16")]
    [InlineData("", TrainingPrecision.Fp32, "no bfloat16")]
    public void Auto_picks_bf16_on_a_cpu_only_when_it_has_bfloat16_matrix_instructions(string flags, TrainingPrecision expected, string reason)
    {
        var choice = TrainingPrecisions.Resolve(TrainingPrecision.Auto, torch.CPU, flags.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet());

        Assert.Equal(expected, choice.Precision);
        Assert.Contains(reason, choice.Reason);
        Assert.StartsWith("auto: ", choice.Reason);
    }

    [Theory]
    [InlineData("8.6", TrainingPrecision.Bf16)]
    [InlineData("8.0", TrainingPrecision.Bf16)]
    [InlineData("7.5", TrainingPrecision.Fp32)]
    public void Auto_picks_bf16_on_a_gpu_of_compute_capability_8_or_later(string capability, TrainingPrecision expected)
    {
        var choice = TrainingPrecisions.Resolve(TrainingPrecision.Auto, new torch.Device(DeviceType.CUDA, 0), cudaCapability: capability);

        Assert.Equal(expected, choice.Precision);
        Assert.Contains(capability, choice.Reason);
    }

    [Theory]
    [InlineData(TrainingPrecision.Fp32)]
    [InlineData(TrainingPrecision.Bf16)]
    public void A_precision_the_spec_names_is_kept_whatever_the_hardware(TrainingPrecision requested)
    {
        Assert.Equal(requested, TrainingPrecisions.Resolve(requested, torch.CPU, new HashSet<string> { "avx512_bf16" }).Precision);
        Assert.Equal(requested, TrainingPrecisions.Resolve(requested, torch.CPU, new HashSet<string>()).Precision);
    }

    [Fact]
    public void A_trainer_on_auto_reports_what_it_chose_on_this_machine()
    {
        using var trainer = new SslTrainer(TinyTraining.Trainer(precision: TrainingPrecision.Auto), iterationsPerEpoch: 2);
        var hasBf16 = TrainingPrecisions.CpuBf16Flags.Any(TrainingPrecisions.ReadCpuFlags().Contains);

        Assert.Equal(hasBf16 ? TrainingPrecision.Bf16 : TrainingPrecision.Fp32, trainer.Precision.Precision);
        Assert.StartsWith("auto: ", trainer.Precision.Reason);
    }

    /// <summary>
    /// The same run (seed, data, schedules) in fp32 and in bf16: bf16 rounds every product to 8 mantissa bits, so the
    /// losses drift apart a little, but step for step they must stay within a few percent of fp32's.
    /// </summary>
    [Fact]
    public void Bf16_training_follows_the_fp32_loss_curve_step_for_step()
    {
        var fp32 = Losses(TrainingPrecision.Fp32);
        var bf16 = Losses(TrainingPrecision.Bf16);

        var deviations = fp32.Zip(bf16, (a, b) => Math.Abs(b - a) / Math.Abs(a)).ToList();
        log.WriteLine("step  fp32      bf16      relative difference");
        for (var i = 0; i < fp32.Count; i++)
            log.WriteLine($"{i,4}  {fp32[i],8:F5}  {bf16[i],8:F5}  {deviations[i]:P2}");
        Assert.Equal(fp32.Count, bf16.Count);
        Assert.All(deviations, d => Assert.InRange(d, 0, MaxRelativeDeviation));
        // Both runs learn: the last epoch's loss is below the first's in each.
        Assert.True(fp32[^1] < fp32[0] && bf16[^1] < bf16[0], $"fp32 {fp32[0]:F4} → {fp32[^1]:F4}, bf16 {bf16[0]:F4} → {bf16[^1]:F4}");
    }

    private const double MaxRelativeDeviation = 0.05;

    private static List<double> Losses(TrainingPrecision precision)
    {
        // Without LayerScale's 1e-5 start the blocks shape the class token from the first step, so images' tokens differ
        // by more than bfloat16's resolution; with it, every image's token is the same at initialisation to about 1e-10,
        // which only fp32 resolves (KoLeo's log-distance then differs between precisions by design, as in DINOv2).
        var options = TinyTraining.Trainer(epochs: 4, precision: precision) with { Backbone = TinyTraining.Backbone with { LayerScaleInit = null } };
        var loader = new SslBatchLoader(TestImages.Blocks(8), TinyTraining.Data(), options.Seed);
        using var trainer = new SslTrainer(options, loader.IterationsPerEpoch);
        var losses = new List<double>();
        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            foreach (var batch in loader.Epoch(epoch))
            {
                using (batch)
                    losses.Add(trainer.Step(batch)[TrainingMetrics.Loss]);
            }
        }
        return losses;
    }
}
