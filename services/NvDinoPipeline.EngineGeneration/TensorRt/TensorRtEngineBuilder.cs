using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace NvDinoPipeline.EngineGeneration.TensorRt;

/// <summary>A trtexec run that did not give what was asked; <see cref="LogPath"/> holds its full log.</summary>
public sealed class TrtexecFailedException(string message, string logPath) : Exception(message)
{
    public string LogPath => logPath;
}

public sealed record TensorRtBuildResult(string EnginePath, TensorRtBuildHost Host, IReadOnlyList<string> Arguments, TimeSpan Elapsed, string LogPath);

/// <summary>
/// Builds a serialised TensorRT engine with trtexec and runs it once to check its outputs. Each failure mode
/// (non-zero exit, a model TensorRT cannot parse, no engine written, unreadable outputs) is a
/// <see cref="TrtexecFailedException"/> whose message says which, with the errors and the last lines of the log.
/// </summary>
public sealed class TensorRtEngineBuilder(string trtexec, TimeSpan timeout, ILogger logger)
{
    private const int TailLines = 20;

    public string Trtexec => trtexec;

    public async Task<TensorRtBuildResult> BuildAsync(TrtexecBuildRequest request, string logPath, string modelDescription, bool echo,
        Action<string>? onLine, CancellationToken cancellationToken)
    {
        var arguments = TrtexecCommand.Build(request);
        File.Delete(request.EnginePath);
        var exit = await RunAsync(arguments, logPath, echo, onLine, cancellationToken);
        if (exit.ExitCode != 0)
        {
            if (TrtexecLog.IsParseFailure(exit.Lines))
            {
                throw new TrtexecFailedException(
                    $"TensorRT could not parse the ONNX model {modelDescription}: {Summary(TrtexecLog.Errors(exit.Lines))}", logPath);
            }

            throw new TrtexecFailedException(
                $"trtexec exited with code {exit.ExitCode} while building the {request.Precision} engine from {modelDescription}. " +
                $"Last lines of its log:\n{string.Join('\n', exit.Tail(TailLines))}", logPath);
        }

        var engine = new FileInfo(request.EnginePath);
        if (!engine.Exists || engine.Length == 0)
        {
            throw new TrtexecFailedException(
                $"trtexec exited with code 0 but wrote no engine at '{request.EnginePath}' (--saveEngine). " +
                $"Last lines of its log:\n{string.Join('\n', exit.Tail(TailLines))}", logPath);
        }

        return new TensorRtBuildResult(request.EnginePath, TrtexecLog.Host(exit.Lines), arguments, exit.Elapsed, logPath);
    }

    /// <summary>Runs the engine on one batch (row-major float32, <paramref name="batch"/> images) and returns the named output's values.</summary>
    public async Task<float[]> RunEngineAsync(string enginePath, string inputName, float[] input, int batch, ShapeProfile profile, string outputName,
        string workDirectory, string logPath, CancellationToken cancellationToken)
    {
        var inputFile = Path.Combine(workDirectory, "verify_input.bin");
        var outputFile = Path.Combine(workDirectory, "verify_output.json");
        await File.WriteAllBytesAsync(inputFile, MemoryMarshal.AsBytes(input.AsSpan()).ToArray(), cancellationToken);
        File.Delete(outputFile);
        var arguments = TrtexecCommand.Run(enginePath, inputName, inputFile, outputFile, profile, batch);
        var exit = await RunAsync(arguments, logPath, echo: false, onLine: null, cancellationToken);
        if (exit.ExitCode != 0)
        {
            throw new TrtexecFailedException(
                $"trtexec exited with code {exit.ExitCode} while running the built engine on {batch} sample image(s). " +
                $"Last lines of its log:\n{string.Join('\n', exit.Tail(TailLines))}", logPath);
        }

        if (!File.Exists(outputFile))
        {
            throw new TrtexecFailedException($"trtexec ran the engine but wrote no outputs to '{outputFile}' (--exportOutput).", logPath);
        }

        IReadOnlyList<TrtexecTensor> outputs;
        try
        {
            outputs = TrtexecOutput.Parse(await File.ReadAllTextAsync(outputFile, cancellationToken), outputFile);
        }
        catch (InvalidDataException exception)
        {
            throw new TrtexecFailedException(exception.Message, logPath);
        }

        var output = outputs.FirstOrDefault(o => o.Name == outputName)
            ?? throw new TrtexecFailedException(
                $"The engine's outputs are [{string.Join(", ", outputs.Select(o => o.Name))}]; the model's embedding output '{outputName}' is not among them.", logPath);
        if (output.Dimensions.Count == 0 || output.Dimensions[0] != batch)
        {
            throw new TrtexecFailedException(
                string.Create(CultureInfo.InvariantCulture, $"The engine's output '{outputName}' has dimensions {string.Join('x', output.Dimensions)}; expected a batch of {batch} first."),
                logPath);
        }

        return output.Values;
    }

    private async Task<TrtexecExit> RunAsync(IReadOnlyList<string> arguments, string logPath, bool echo, Action<string>? onLine, CancellationToken cancellationToken)
    {
        logger.LogInformation("Running {Trtexec} {Arguments}", trtexec, string.Join(' ', arguments));
        try
        {
            return await TrtexecProcess.RunAsync(trtexec, arguments, logPath, timeout, line =>
            {
                if (echo)
                {
                    logger.LogInformation("trtexec: {Line}", line);
                }

                onLine?.Invoke(line);
            }, cancellationToken);
        }
        catch (TimeoutException exception)
        {
            throw new TrtexecFailedException(exception.Message, logPath);
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            throw new TrtexecFailedException($"trtexec at '{trtexec}' could not be started: {exception.Message}", logPath);
        }
    }

    private static string Summary(IReadOnlyList<string> errors) =>
        errors.Count == 0 ? "trtexec printed no error lines" : string.Join(" | ", errors.Take(5));
}
