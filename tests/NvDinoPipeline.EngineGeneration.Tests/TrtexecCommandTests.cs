using NvDinoPipeline.EngineGeneration.TensorRt;

namespace NvDinoPipeline.EngineGeneration.Tests;

public sealed class TrtexecCommandTests
{
    private static readonly ShapeProfile Dynamic = new(1, 8, 16, 3, 224, 224, DynamicShapes: true);

    private static TrtexecBuildRequest Request(string precision, ShapeProfile? profile = null) => new()
    {
        OnnxPath = "/work/model.onnx",
        EnginePath = "/work/model.engine",
        Precision = precision,
        InputName = "input",
        Profile = profile ?? Dynamic,
        WorkspaceMiB = 1024,
        TimingCachePath = "/work/timing.cache",
    };

    [Fact]
    public void Builds_an_fp32_engine_with_one_profile_workspace_and_timing_cache()
    {
        var args = TrtexecCommand.Build(Request("fp32"));

        Assert.Equal(
        [
            "--onnx=/work/model.onnx",
            "--saveEngine=/work/model.engine",
            "--memPoolSize=workspace:1024",
            "--minShapes=input:1x3x224x224",
            "--optShapes=input:8x3x224x224",
            "--maxShapes=input:16x3x224x224",
            "--timingCacheFile=/work/timing.cache",
            "--skipInference",
            "--verbose",
        ], args);
    }

    [Theory]
    [InlineData("fp16", "--fp16")]
    [InlineData("int8", "--int8")]
    public void Enables_the_data_type_in_the_builder(string precision, string flag)
    {
        var args = TrtexecCommand.Build(Request(precision));

        Assert.Contains(flag, args);
        Assert.DoesNotContain(precision == "fp16" ? "--int8" : "--fp16", args);
    }

    [Fact]
    public void Fp32_enables_no_reduced_precision()
    {
        var args = TrtexecCommand.Build(Request("fp32"));

        Assert.DoesNotContain("--fp16", args);
        Assert.DoesNotContain("--int8", args);
    }

    [Fact]
    public void A_fixed_batch_profile_builds_min_opt_and_max_at_that_batch()
    {
        var args = TrtexecCommand.Build(Request("fp16", new ShapeProfile(4, 4, 4, 3, 518, 518, DynamicShapes: true)));

        Assert.Contains("--minShapes=input:4x3x518x518", args);
        Assert.Contains("--optShapes=input:4x3x518x518", args);
        Assert.Contains("--maxShapes=input:4x3x518x518", args);
    }

    [Fact]
    public void A_model_with_a_fully_fixed_input_gets_no_shape_flags()
    {
        var args = TrtexecCommand.Build(Request("fp32", new ShapeProfile(2, 2, 2, 3, 224, 224, DynamicShapes: false)));

        Assert.DoesNotContain(args, a => a.Contains("Shapes=", StringComparison.Ordinal));
    }

    [Fact]
    public void Layer_precisions_are_obeyed_and_enable_the_precisions_they_name()
    {
        var request = Request("fp32") with
        {
            LayersPrecision = [new LayerPrecision("/blocks.0/norm1/LayerNormalization", "fp32"), new LayerPrecision("/blocks.0/attn/MatMul", "fp16")],
        };

        var args = TrtexecCommand.Build(request);

        Assert.Contains("--layerPrecisions=/blocks.0/norm1/LayerNormalization:fp32,/blocks.0/attn/MatMul:fp16", args);
        Assert.Contains("--precisionConstraints=obey", args);
        Assert.Contains("--fp16", args);
    }

    [Fact]
    public void A_zero_workspace_leaves_tensorrts_default_and_no_cache_means_no_cache_flag()
    {
        var args = TrtexecCommand.Build(Request("fp32") with { WorkspaceMiB = 0, TimingCachePath = null });

        Assert.DoesNotContain(args, a => a.StartsWith("--memPoolSize", StringComparison.Ordinal));
        Assert.DoesNotContain(args, a => a.StartsWith("--timingCacheFile", StringComparison.Ordinal));
    }

    [Fact]
    public void A_verification_run_loads_the_engine_feeds_a_raw_input_and_exports_outputs()
    {
        var args = TrtexecCommand.Run("/work/model.engine", "input", "/work/in.bin", "/work/out.json", Dynamic, batch: 5);

        Assert.Equal(
        [
            "--loadEngine=/work/model.engine",
            "--loadInputs=input:/work/in.bin",
            "--exportOutput=/work/out.json",
            "--shapes=input:5x3x224x224",
            "--iterations=1",
            "--warmUp=0",
            "--duration=0",
            "--avgRuns=1",
        ], args);
    }

    [Fact]
    public void An_input_name_with_a_colon_is_quoted()
    {
        var args = TrtexecCommand.Build(Request("fp32") with { InputName = "input:0" });

        Assert.Contains("--minShapes='input:0':1x3x224x224", args);
    }
}
