namespace NvDinoPipeline.Inference.Tests;

public sealed class ExecutionProvidersTests
{
    private static readonly string[] CpuOnly = [ExecutionProviders.CpuProvider];
    private static readonly string[] Gpu = [ExecutionProviders.TensorRtProvider, ExecutionProviders.CudaProvider, ExecutionProviders.CpuProvider];

    [Fact]
    public void Auto_takes_tensorrt_then_cuda_then_cpu()
    {
        Assert.Equal(ExecutionProviderKind.TensorRt, ExecutionProviders.Select("auto", Gpu).Kind);
        Assert.Equal(ExecutionProviderKind.Cuda, ExecutionProviders.Select("auto", [ExecutionProviders.CudaProvider, ExecutionProviders.CpuProvider]).Kind);
        var cpu = ExecutionProviders.Select("auto", CpuOnly);
        Assert.Equal(ExecutionProviderKind.Cpu, cpu.Kind);
        Assert.Contains("neither TensorRT nor CUDA", cpu.Reason);
    }

    [Fact]
    public void A_named_provider_this_build_lacks_is_refused_naming_what_it_has()
    {
        var failure = Assert.Throws<ExecutionProviderUnavailableException>(() => ExecutionProviders.Select("cuda", CpuOnly));

        Assert.Contains("'cuda'", failure.Message);
        Assert.Contains(ExecutionProviders.CpuProvider, failure.Message);
    }

    [Fact]
    public void Cpu_can_be_asked_for_on_a_gpu_build()
    {
        Assert.Equal(ExecutionProviderKind.Cpu, ExecutionProviders.Select("cpu", Gpu).Kind);
    }

    [Fact]
    public void This_onnx_runtime_build_offers_the_cpu_provider()
    {
        Assert.Contains(ExecutionProviders.CpuProvider, ExecutionProviders.Available());
    }
}
