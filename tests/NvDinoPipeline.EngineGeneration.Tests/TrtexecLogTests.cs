using NvDinoPipeline.EngineGeneration.TensorRt;

namespace NvDinoPipeline.EngineGeneration.Tests;

public sealed class TrtexecLogTests
{
    [Theory]
    [InlineData(8601, "8.6.1")]
    [InlineData(8503, "8.5.3")]
    [InlineData(100300, "10.3.0")]
    [InlineData(101300, "10.13.0")]
    public void Decodes_the_version_in_trtexecs_banner(long encoded, string version) =>
        Assert.Equal(version, NvDinoPipeline.Onnx.EpContext.TensorRtVersion.Decode(encoded));

    [Fact]
    public void Reads_tensorrt_version_gpu_and_compute_capability_from_a_build_log()
    {
        string[] log =
        [
            "&&&& RUNNING TensorRT.trtexec [TensorRT v8601] # /usr/src/tensorrt/bin/trtexec --onnx=model.onnx",
            "[11/22/2026-10:00:00] [I] === Device Information ===",
            "[11/22/2026-10:00:00] [I] Selected Device: NVIDIA L4",
            "[11/22/2026-10:00:00] [I] Compute Capability: 8.9",
            "[11/22/2026-10:00:00] [I] TensorRT version: 8.6.1",
        ];

        var host = TrtexecLog.Host(log);

        Assert.Equal(new TensorRtBuildHost("8.6.1", "NVIDIA L4", "8.9"), host);
    }

    [Fact]
    public void Falls_back_to_the_banner_when_no_version_line_is_printed()
    {
        var host = TrtexecLog.Host(["&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec"]);

        Assert.Equal("10.3.0", host.TensorRtVersion);
        Assert.Null(host.Gpu);
    }

    [Fact]
    public void Recognises_an_onnx_parser_failure_and_collects_error_lines()
    {
        string[] log =
        [
            "[I] Start parsing network model.",
            "[E] [TRT] ModelImporter.cpp:775: ERROR: No importer registered for op: Foo",
            "[E] Failed to parse onnx file",
        ];

        Assert.True(TrtexecLog.IsParseFailure(log));
        Assert.Equal(2, TrtexecLog.Errors(log).Count);
        Assert.False(TrtexecLog.IsParseFailure(["[E] Error[2]: out of memory"]));
    }
}
