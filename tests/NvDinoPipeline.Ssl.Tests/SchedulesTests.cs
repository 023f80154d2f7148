using NvDinoPipeline.Ssl.Schedules;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class CosineSchedulerTests
{
    private static readonly System.Text.Json.JsonElement Schedules = Fixture.Load("schedules.json");

    private static System.Text.Json.JsonElement Case(string name) =>
        Schedules.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    private static CosineScheduler FromArgs(System.Text.Json.JsonElement c)
    {
        var a = c.GetProperty("args");
        double Get(string key, double fallback) => a.TryGetProperty(key, out var v) ? v.GetDouble() : fallback;
        var scheduler = new CosineScheduler(
            a.GetProperty("base_value").GetDouble(),
            a.GetProperty("final_value").GetDouble(),
            a.GetProperty("total_iters").GetInt64(),
            (long)Get("warmup_iters", 0),
            Get("start_warmup_value", 0),
            (long)Get("freeze_iters", 0));
        var zeroPrefix = c.GetProperty("zero_prefix").GetInt64();
        return zeroPrefix > 0 ? scheduler.WithZeroedPrefix(zeroPrefix) : scheduler;
    }

    private static void AssertMatches(System.Text.Json.JsonElement c, CosineScheduler scheduler)
    {
        var iterations = c.GetProperty("iterations").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var values = c.GetProperty("values").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (var i = 0; i < iterations.Length; i++)
            Assert.True(Math.Abs(values[i] - scheduler[iterations[i]]) <= 1e-9 + 1e-7 * Math.Abs(values[i]),
                $"{c.GetProperty("name").GetString()} at iteration {iterations[i]}: expected {values[i]}, got {scheduler[iterations[i]]}");
    }

    [Theory]
    [InlineData("lr")]
    [InlineData("weight_decay")]
    [InlineData("teacher_momentum")]
    [InlineData("teacher_temp")]
    [InlineData("last_layer_lr")]
    [InlineData("freeze_and_warmup")]
    [InlineData("single_warmup_iteration")]
    public void Values_match_DINOv2_CosineScheduler(string name)
    {
        var c = Case(name);
        AssertMatches(c, FromArgs(c));
    }

    [Fact]
    public void Recipe_schedules_built_from_options_match_DINOv2_build_schedulers()
    {
        // 10 epochs of 10 iterations, as the fixture cases.
        var schedules = SslSchedules.Create(new SslScheduleOptions
        {
            Lr = Schedules.GetProperty("scaled_lr").GetDouble(),
            MinLr = 1e-6,
            Epochs = 10,
            WarmupEpochs = 2,
            WeightDecay = 0.04,
            WeightDecayEnd = 0.2,
            MomentumTeacher = 0.994,
            FinalMomentumTeacher = 1.0,
            TeacherTemp = 0.07,
            WarmupTeacherTemp = 0.04,
            WarmupTeacherTempEpochs = 3,
            FreezeLastLayerEpochs = 1,
        }, iterationsPerEpoch: 10);

        AssertMatches(Case("lr"), schedules.Lr);
        AssertMatches(Case("weight_decay"), schedules.WeightDecay);
        AssertMatches(Case("teacher_momentum"), schedules.TeacherMomentum);
        AssertMatches(Case("teacher_temp"), schedules.TeacherTemp);
        AssertMatches(Case("last_layer_lr"), schedules.LastLayerLr);

        var at = schedules.At(5);
        Assert.Equal(0.0, at.LastLayerLr);
        Assert.Equal(schedules.Lr[5], at.Lr);
        Assert.Equal(schedules.TeacherTemp[5], at.TeacherTemp);
    }

    [Fact]
    public void Learning_rate_scales_with_the_square_root_of_the_global_batch_over_1024()
    {
        foreach (var s in Schedules.GetProperty("scaling").EnumerateArray())
        {
            var lr = LearningRateScaling.SqrtWrt1024(s.GetProperty("base_lr").GetDouble(), s.GetProperty("batch").GetInt32(), s.GetProperty("gpus").GetInt32(), s.GetProperty("nodes").GetInt32());
            Assert.Equal(s.GetProperty("lr").GetDouble(), lr, 12);
        }
    }

    [Fact]
    public void Rejects_warmup_longer_than_the_schedule()
    {
        var ex = Assert.Throws<ArgumentException>(() => new CosineScheduler(1.0, 0.0, totalIters: 10, warmupIters: 8, freezeIters: 3));
        Assert.Equal("totalIters", ex.ParamName);
    }
}
