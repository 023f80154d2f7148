using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Inference.Tests.Support;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Inference.Tests;

/// <summary>
/// A tensorrt deploy target: which file the loader runs on which provider, and the engines it refuses. The hosts
/// with TensorRT are stand-ins (this machine has no GPU); the files are the ones engine generation writes.
/// </summary>
public sealed class TensorRtEngineTests : IAsyncLifetime
{
    private readonly TempDirectory _folder = new("nvdino-trt-inference");
    private ArtifactStore _store = null!;
    private TinyVit _model = null!;
    private EngineJobFolder _job = null!;

    public async Task InitializeAsync()
    {
        _store = new ArtifactStore(Options.Create(new ArtifactStoreOptions { Root = new Uri(_folder.Combine("artifacts") + "/").AbsoluteUri, AllowedReadRoots = [_folder.Path] }));
        _model = TinyVit.Create(_folder.Combine("export"));
        _job = await EngineJobFolder.WriteAsync(_store, _model, _folder.Combine("built"), _store.JobFolder(Guid.NewGuid(), Guid.NewGuid()));
    }

    public Task DisposeAsync()
    {
        _store.Dispose();
        _folder.Dispose();
        return Task.CompletedTask;
    }

    private DeployedModelLoader Loader(IInferenceHardware hardware, Action<InferenceOptions>? configure = null) =>
        new(_store, hardware, Options.Create(RunnerBed.Configure(configure)), NullLogger<DeployedModelLoader>.Instance);

    private string Scratch => _folder.Combine("scratch");

    [Fact]
    public async Task With_the_tensorrt_provider_the_ep_context_model_runs_with_the_engine_the_stage_built_beside_it()
    {
        var resolved = await Loader(StandInHardware.TensorRt()).ResolveAsync(_job.Reference, "auto", Scratch, CancellationToken.None);

        Assert.Equal(ExecutionProviderKind.TensorRt, resolved.Provider.Kind);
        Assert.Equal(_job.Context, resolved.Engine);
        Assert.Equal("model_ctx.onnx", Path.GetFileName(resolved.LocalPath));
        Assert.Equal(_job.Folder.Append("model_ctx.onnx"), resolved.ModelUri);
        var engine = Path.Combine(Path.GetDirectoryName(resolved.LocalPath)!, "model.engine");
        Assert.Equal(await File.ReadAllBytesAsync(_job.EngineUri.LocalPath), await File.ReadAllBytesAsync(engine));
    }

    public static TheoryData<string, string, string, string> OtherHosts => new()
    {
        { "10.4.0", "NVIDIA A100-SXM4-40GB", "8.0", "built by TensorRT 10.3.0 and this host has TensorRT 10.4.0" },
        { "10.3.0", "NVIDIA A10", "8.6", "built for compute capability 8.0 (NVIDIA A100-SXM4-40GB) and this host's GPU is NVIDIA A10 with compute capability 8.6" },
        { "10.3.0", "NVIDIA A100 80GB PCIe", "8.0", "Inference:AllowEngineOnOtherGpuModel=true" },
    };

    [Theory]
    [MemberData(nameof(OtherHosts))]
    public async Task An_engine_built_for_another_tensorrt_or_gpu_is_refused_with_the_reason_before_it_is_fetched(string version, string gpu, string capability,
        string reason)
    {
        var loader = Loader(StandInHardware.TensorRt(version, gpu, capability));

        var error = await Assert.ThrowsAsync<StageUnavailableException>(() => loader.ResolveAsync(_job.Reference, "auto", Scratch, CancellationToken.None));

        Assert.Contains($"The TensorRT engine {_job.EngineUri} cannot run on this host", error.Message);
        Assert.Contains(reason, error.Message);
        Assert.Contains("inference.execution_provider=cuda or cpu", error.Message);
        Assert.False(Directory.Exists(Path.Combine(Scratch, "tensorrt-engine")));
    }

    [Fact]
    public async Task Another_model_of_the_same_compute_capability_runs_the_engine_when_the_host_allows_it()
    {
        var loader = Loader(StandInHardware.TensorRt(gpu: "NVIDIA A100 80GB PCIe"), o => o.AllowEngineOnOtherGpuModel = true);

        var resolved = await loader.ResolveAsync(_job.Reference, "tensorrt", Scratch, CancellationToken.None);

        Assert.Equal(ExecutionProviderKind.TensorRt, resolved.Provider.Kind);
    }

    [Fact]
    public async Task A_host_whose_tensorrt_cannot_be_found_is_refused_saying_what_was_looked_for()
    {
        var hardware = StandInHardware.TensorRt() with
        {
            Host = new TensorRtHostInfo(null, "NVIDIA A100-SXM4-40GB", "8.0", ["no TensorRT library (libnvinfer.so.10, libnvinfer.so) could be loaded"]),
        };

        var error = await Assert.ThrowsAsync<StageUnavailableException>(() => Loader(hardware).ResolveAsync(_job.Reference, "auto", Scratch, CancellationToken.None));

        Assert.Contains("could not be determined (no TensorRT library (libnvinfer.so.10, libnvinfer.so) could be loaded)", error.Message);
    }

    [Fact]
    public async Task An_engine_replaced_after_engine_generation_is_refused()
    {
        await File.WriteAllTextAsync(_folder.Combine("other.engine"), "another engine\n");
        await _store.PutFileAsync(_job.EngineUri, _folder.Combine("other.engine"), CancellationToken.None);

        var error = await Assert.ThrowsAsync<StageInputException>(() =>
            Loader(StandInHardware.TensorRt()).ResolveAsync(_job.Reference, "auto", Scratch, CancellationToken.None));

        Assert.Contains($"is not the engine {_job.Folder.Append("model_ctx.onnx")} was written for (SHA-256 {_job.Context.EngineSha256})", error.Message);
    }

    [Theory]
    [InlineData("cuda", ExecutionProviderKind.Cuda)]
    [InlineData("cpu", ExecutionProviderKind.Cpu)]
    public async Task Asked_to_run_without_tensorrt_the_onnx_model_the_engine_was_built_from_runs(string requested, ExecutionProviderKind kind)
    {
        var resolved = await Loader(StandInHardware.TensorRt()).ResolveAsync(_job.Reference, requested, Scratch, CancellationToken.None);

        Assert.Equal(kind, resolved.Provider.Kind);
        Assert.Null(resolved.Engine);
        Assert.Equal(_job.Folder.Append("model.onnx"), resolved.ModelUri);
    }

    [Fact]
    public async Task An_engine_job_without_an_ep_context_model_is_refused_on_tensorrt_rather_than_rebuilt()
    {
        var loader = Loader(StandInHardware.TensorRt());
        var old = _job.Reference with { ModelMetadataUri = _model.MetadataUri };

        var error = await Assert.ThrowsAsync<StageInputException>(() => loader.ResolveAsync(old, "auto", Scratch, CancellationToken.None));

        Assert.Contains("left no EP-context model for its engine (model.onnx is a plain ONNX model)", error.Message);
    }

    [Fact]
    public async Task The_engine_runs_from_the_cpu_fallback_of_the_real_runner_with_the_same_embeddings()
    {
        await using var bed = await RunnerBed.StartAsync(readableFolder: _folder.Path);
        var images = TestImages.Make(2, seed: 4);
        var shards = await TestImages.WriteShardsAsync(bed.Folder.Combine("test", "shards"), images);
        var command = bed.Command(_model, shards, target: DeployedModelReference.TensorRtTarget, overrides: "inference.execution_provider=cpu") with
        {
            DeployArtifactUri = _job.EngineUri,
            ModelMetadataUri = _job.MetadataUri,
        };

        var result = await bed.RunAsync(command);

        var stored = await Outputs.ReadBinaryAsync(result.Completed.EmbeddingsUri.LocalPath, result.Completed.IndexUri.LocalPath, TinyVit.Dimension);
        Assert.True(Outputs.Cosine(_model.Reference(images[1]), stored[1].Embedding) >= 0.9999);
    }

    [Fact]
    public void The_native_probe_says_what_it_could_not_find_instead_of_failing()
    {
        var host = new NativeInferenceHardware().TensorRt(deviceId: 0);

        if (host.TensorRtVersion is null)
        {
            Assert.Contains(host.Problems, p => p.Contains("libnvinfer.so.10", StringComparison.Ordinal));
        }
        if (host.Gpu is null)
        {
            Assert.Contains(host.Problems, p => p.Contains("libcuda.so.1", StringComparison.Ordinal) || p.StartsWith("GPU 0:", StringComparison.Ordinal));
        }
        else
        {
            Assert.Matches(@"^\d+\.\d$", host.ComputeCapability);
        }
    }
}
