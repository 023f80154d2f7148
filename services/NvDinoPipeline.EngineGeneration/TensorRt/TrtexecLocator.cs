using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Hosting.Workers;

namespace NvDinoPipeline.EngineGeneration.TensorRt;

/// <summary>Finds TensorRT's <c>trtexec</c>: the configured path, else <c>PATH</c>, else the usual install folders.</summary>
public sealed class TrtexecLocator(IOptions<EngineGenerationOptions> options)
{
    public const string ExecutableName = "trtexec";

    /// <summary>The trtexec to run.</summary>
    /// <exception cref="StageUnavailableException">None was found; the message lists every place looked at.</exception>
    public string Locate() => Locate(Environment.GetEnvironmentVariable("PATH"));

    internal string Locate(string? pathVariable)
    {
        var settings = options.Value;
        var searched = new List<string>();
        if (settings.TrtexecPath is { Length: > 0 } configured)
        {
            if (IsExecutable(configured))
            {
                return configured;
            }

            throw Unavailable(
                $"EngineGeneration:TrtexecPath is '{configured}', which {(File.Exists(configured) ? "is not executable" : "does not exist")}",
                searched);
        }

        searched.Add("EngineGeneration:TrtexecPath (environment EngineGeneration__TrtexecPath): not set");
        var pathFolders = (pathVariable ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        foreach (var folder in pathFolders.Concat(settings.TrtexecSearchDirectories))
        {
            var candidate = Path.Combine(folder, ExecutableName);
            if (IsExecutable(candidate))
            {
                return candidate;
            }
        }

        searched.Add(pathFolders.Length == 0 ? "PATH: empty" : $"PATH ({string.Join(Path.PathSeparator, pathFolders)}): no {ExecutableName}");
        searched.AddRange(settings.TrtexecSearchDirectories.Select(folder => $"{Path.Combine(folder, ExecutableName)}: missing"));
        throw Unavailable($"TensorRT's {ExecutableName} was not found on this host", searched);
    }

    private static StageUnavailableException Unavailable(string what, List<string> searched)
    {
        string providers;
        try
        {
            var available = OrtEnv.Instance().GetAvailableProviders();
            providers = available.Contains("TensorrtExecutionProvider")
                ? "ONNX Runtime's TensorrtExecutionProvider is present, but engines are built with trtexec"
                : $"this ONNX Runtime build has no TensorrtExecutionProvider either ({string.Join(", ", available)})";
        }
        catch (Exception exception) when (exception is OnnxRuntimeException or DllNotFoundException or TypeInitializationException)
        {
            providers = $"ONNX Runtime could not be asked for its execution providers ({exception.Message})";
        }

        var looked = searched.Count == 0 ? "" : $" Looked at: {string.Join("; ", searched)}.";
        return new StageUnavailableException(
            $"Cannot build a TensorRT engine: {what}.{looked} Also, {providers}. " +
            "Run this job on a host with TensorRT (its containers ship /usr/src/tensorrt/bin/trtexec) or set EngineGeneration:TrtexecPath, " +
            "or deploy without TensorRT with pipeline.deploy.target=onnxruntime.");
    }

    internal static bool IsExecutable(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        if (OperatingSystem.IsWindows())
        {
            return true;
        }

        const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        return (File.GetUnixFileMode(path) & anyExecute) != 0;
    }
}
