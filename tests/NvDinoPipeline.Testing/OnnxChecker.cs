using System.Diagnostics;

namespace NvDinoPipeline.Testing;

/// <summary>The reference ONNX checker from Debian's python3-onnx, run on exported model files.</summary>
public static class OnnxChecker
{
    private const string Python = "/usr/bin/python3";

    // full_check adds strict shape inference on top of the structural checks.
    private const string Script =
        "import onnx, sys\n" +
        "for path in sys.argv[1:]:\n" +
        "    onnx.checker.check_model(onnx.load(path), full_check=True)\n";

    public static void AssertValid(params string[] modelPaths)
    {
        Assert.True(File.Exists(Python), $"{Python} (Debian's python3 with python3-onnx) is needed to run the ONNX checker.");
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(Script);
        foreach (var path in modelPaths)
        {
            start.ArgumentList.Add(path);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(60_000), "The ONNX checker did not finish within 60 s.");
        Assert.True(process.ExitCode == 0, $"onnx.checker rejected {string.Join(", ", modelPaths.Select(Path.GetFileName))}:\n{stderr}{stdout.Result}");
    }
}
