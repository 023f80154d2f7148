using NvDinoPipeline.EngineGeneration.TensorRt;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Testing;
using MsOptions = Microsoft.Extensions.Options.Options;

namespace NvDinoPipeline.EngineGeneration.Tests;

public sealed class TrtexecLocatorTests : IDisposable
{
    private readonly TempDirectory _temp = new("nvdino-trtexec");

    public void Dispose() => _temp.Dispose();

    private static TrtexecLocator Locator(EngineGenerationOptions options) => new(MsOptions.Create(options));

    private string Executable(string folder, string name = "trtexec")
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, name);
        File.WriteAllText(path, "#!/bin/sh\nexit 0\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [Fact]
    public void Without_trtexec_names_every_place_looked_at_and_suggests_the_onnxruntime_target()
    {
        var missing = _temp.Combine("tensorrt", "bin");
        var locator = Locator(new EngineGenerationOptions { TrtexecSearchDirectories = [missing] });

        var error = Assert.Throws<StageUnavailableException>(() => locator.Locate(pathVariable: _temp.Combine("empty")));

        Assert.Contains("EngineGeneration:TrtexecPath", error.Message);
        Assert.Contains(_temp.Combine("empty"), error.Message);
        Assert.Contains(Path.Combine(missing, "trtexec"), error.Message);
        Assert.Contains("TensorrtExecutionProvider", error.Message);
        Assert.Contains("pipeline.deploy.target=onnxruntime", error.Message);
    }

    [Fact]
    public void A_configured_path_that_does_not_exist_fails_naming_it()
    {
        var configured = _temp.Combine("nowhere", "trtexec");
        var locator = Locator(new EngineGenerationOptions { TrtexecPath = configured });

        var error = Assert.Throws<StageUnavailableException>(() => locator.Locate(pathVariable: null));

        Assert.Contains($"'{configured}', which does not exist", error.Message);
    }

    [Fact]
    public void A_file_without_execute_permission_is_not_taken_for_trtexec()
    {
        var path = _temp.Combine("trtexec");
        File.WriteAllText(path, "not a program");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var locator = Locator(new EngineGenerationOptions { TrtexecPath = path });

        var error = Assert.Throws<StageUnavailableException>(() => locator.Locate(pathVariable: null));

        Assert.Contains("is not executable", error.Message);
    }

    [Fact]
    public void Finds_trtexec_on_path_before_the_install_folders()
    {
        var onPath = Executable(_temp.Combine("path-bin"));
        var installed = Executable(_temp.Combine("usr-src-tensorrt-bin"));
        var locator = Locator(new EngineGenerationOptions { TrtexecSearchDirectories = [Path.GetDirectoryName(installed)!] });

        Assert.Equal(onPath, locator.Locate(pathVariable: $"{_temp.Combine("empty")}:{Path.GetDirectoryName(onPath)}"));
        Assert.Equal(installed, locator.Locate(pathVariable: _temp.Combine("empty")));
    }
}
