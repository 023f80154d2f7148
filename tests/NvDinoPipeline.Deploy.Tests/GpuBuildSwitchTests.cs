using System.Text.Json;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>
/// deploy/gpu.props, the switch the GPU images build with. Only MSBuild's evaluation is exercised:
/// the CUDA packages are not on the package feed this suite restores from, so no GPU build is made.
/// </summary>
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
}
