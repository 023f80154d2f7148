using System.Text.Json;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>
/// deploy/gpu.props, the switch the GPU images build with: MSBuild's evaluation for every project, and a real
/// restore and compile of the engine generation and inference workers, whose GPU package (ONNX Runtime with the
/// CUDA and TensorRT providers) the feed serves. The CUDA build of libtorch is not served, so the TorchSharp
/// workers are checked by evaluation only. The GPU build goes to its own artifacts folder and runs alone, so it
/// neither overwrites the CPU build nor slows the timing-sensitive tests beside it.
/// </summary>
[Collection(GpuBuildCollection.Name)]
public sealed class GpuBuildSwitchTests
{
    private static readonly string GpuProps = Repo.PathOf("deploy", "gpu.props");
    private const string HowToInstall = "The .NET SDK's dotnet must be on PATH.";

    private static async Task<List<string>> PackageReferencesAsync(string project, params string[] properties)
    {
        var result = await ExternalTool.RunAsync("dotnet",
            ["msbuild", Repo.PathOf(project), "-nologo", "-nr:false", "-getItem:PackageReference", $"-p:CustomAfterMicrosoftCommonTargets={GpuProps}", .. properties],
            Repo.Root, TimeSpan.FromMinutes(2), HowToInstall);
        Assert.True(result.ExitCode == 0, $"Evaluating {project} failed:\n{result.Output}{result.Error}");
        using var json = JsonDocument.Parse(result.Output);
        return json.RootElement.GetProperty("Items").GetProperty("PackageReference").EnumerateArray()
            .Select(item => item.GetProperty("Identity").GetString()!)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    [Fact]
    public async Task The_cuda_switch_replaces_the_cpu_builds_of_libtorch_and_onnx_runtime_and_changes_nothing_without_it()
    {
        var model = "libs/NvDinoPipeline.Model/NvDinoPipeline.Model.csproj";
        var onnx = "libs/NvDinoPipeline.Onnx/NvDinoPipeline.Onnx.csproj";

        var modelCpu = await PackageReferencesAsync(model);
        var modelCuda = await PackageReferencesAsync(model, "-p:TorchBackend=cuda");
        var onnxCpu = await PackageReferencesAsync(onnx, "-p:TorchBackend=cpu");
        var onnxCuda = await PackageReferencesAsync(onnx, "-p:TorchBackend=cuda");

        Assert.Contains("libtorch-cpu-linux-x64", modelCpu);
        Assert.Equal(modelCpu.Select(p => p == "libtorch-cpu-linux-x64" ? "libtorch-cuda-12.8-linux-x64" : p).Order(StringComparer.Ordinal), modelCuda);
        Assert.Contains("Microsoft.ML.OnnxRuntime", onnxCpu);
        Assert.Equal(onnxCpu.Select(p => p == "Microsoft.ML.OnnxRuntime" ? "Microsoft.ML.OnnxRuntime.Gpu.Linux" : p).Order(StringComparer.Ordinal), onnxCuda);
        Assert.DoesNotContain(onnxCuda, p => p.StartsWith("libtorch", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unknown_backend_fails_the_build_naming_the_allowed_values()
    {
        var result = await ExternalTool.RunAsync("dotnet",
            ["msbuild", Repo.PathOf("libs/NvDinoPipeline.Model/NvDinoPipeline.Model.csproj"), "-nologo", "-nr:false",
                "-t:ReportTorchBackend", "-p:TorchBackend=gpu", $"-p:CustomAfterMicrosoftCommonTargets={GpuProps}"],
            Repo.Root, TimeSpan.FromMinutes(2), HowToInstall);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("TorchBackend is 'gpu'; use cpu (the default) or cuda.", result.Output);
    }

    [Fact]
    public async Task The_engine_and_inference_workers_restore_and_compile_with_the_cuda_switch_carrying_the_tensorrt_provider()
    {
        using var artifacts = new TempDirectory("nvdino-gpu-build");
        foreach (var worker in new[] { "NvDinoPipeline.EngineGeneration", "NvDinoPipeline.Inference" })
        {
            var result = await ExternalTool.RunAsync("dotnet",
                ["build", Repo.PathOf("services", worker, $"{worker}.csproj"), "-c", "Release", "-nologo", "-nr:false", "-p:TorchBackend=cuda",
                    $"-p:CustomAfterMicrosoftCommonTargets={GpuProps}", $"-p:ArtifactsPath={artifacts.Path}"],
                Repo.Root, TimeSpan.FromMinutes(20), HowToInstall);

            Assert.True(result.ExitCode == 0, $"The GPU build of {worker} failed:\n{result.Output}{result.Error}");
            var output = Path.Combine(artifacts.Path, "bin", worker, "release_linux-x64");
            foreach (var library in new[] { "libonnxruntime.so", "libonnxruntime_providers_cuda.so", "libonnxruntime_providers_tensorrt.so" })
            {
                Assert.True(File.Exists(Path.Combine(output, library)), $"{library} is missing from the GPU build of {worker} ({output}).");
            }

            var assets = await File.ReadAllTextAsync(Path.Combine(artifacts.Path, "obj", worker, "project.assets.json"));
            Assert.Contains("\"Microsoft.ML.OnnxRuntime.Gpu.Linux/1.31.0\"", assets);
            Assert.DoesNotContain("\"Microsoft.ML.OnnxRuntime/", assets);
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GpuBuildCollection
{
    public const string Name = "GPU build";
}
