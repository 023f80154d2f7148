using System.Globalization;

namespace NvDinoPipeline.EngineGeneration.TensorRt;

/// <summary>
/// The input shapes an engine is built for: one optimisation profile over the batch (min/opt/max) at a fixed
/// channel count and image size. <see cref="DynamicShapes"/> is false for an ONNX model whose input is fully fixed.
/// </summary>
public sealed record ShapeProfile(int MinBatch, int OptBatch, int MaxBatch, int Channels, int Height, int Width, bool DynamicShapes)
{
    public string Shape(int batch) => string.Create(CultureInfo.InvariantCulture, $"{batch}x{Channels}x{Height}x{Width}");
}

/// <summary>What one engine build needs.</summary>
public sealed record TrtexecBuildRequest
{
    public required string OnnxPath { get; init; }

    public required string EnginePath { get; init; }

    /// <summary>fp32, fp16 or int8 (int8 expects a model with QuantizeLinear/DequantizeLinear nodes).</summary>
    public required string Precision { get; init; }

    public required string InputName { get; init; }

    public required ShapeProfile Profile { get; init; }

    /// <summary>MiB; 0 leaves TensorRT's default workspace limit.</summary>
    public int WorkspaceMiB { get; init; }

    public string? TimingCachePath { get; init; }

    public IReadOnlyList<LayerPrecision> LayersPrecision { get; init; } = [];
}

/// <summary>
/// trtexec command lines (TensorRT 8.6 and later). A build writes the engine and skips trtexec's timing runs;
/// a verification run loads the engine, feeds one raw float32 input file and exports the outputs as JSON.
/// </summary>
public static class TrtexecCommand
{
    public static IReadOnlyList<string> Build(TrtexecBuildRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var args = new List<string>
        {
            $"--onnx={request.OnnxPath}",
            $"--saveEngine={request.EnginePath}",
        };

        // A layer asked to run in fp16 or int8 needs that precision enabled in the builder as well.
        var precisions = request.LayersPrecision.Select(l => l.Precision).Append(request.Precision).ToHashSet(StringComparer.Ordinal);
        if (precisions.Contains(Precisions.Fp16))
        {
            args.Add("--fp16");
        }

        if (precisions.Contains(Precisions.Int8))
        {
            args.Add("--int8");
        }

        if (request.WorkspaceMiB > 0)
        {
            args.Add(string.Create(CultureInfo.InvariantCulture, $"--memPoolSize=workspace:{request.WorkspaceMiB}"));
        }

        var profile = request.Profile;
        if (profile.DynamicShapes)
        {
            var input = QuoteName(request.InputName);
            args.Add($"--minShapes={input}:{profile.Shape(profile.MinBatch)}");
            args.Add($"--optShapes={input}:{profile.Shape(profile.OptBatch)}");
            args.Add($"--maxShapes={input}:{profile.Shape(profile.MaxBatch)}");
        }

        if (request.TimingCachePath is { } cache)
        {
            args.Add($"--timingCacheFile={cache}");
        }

        if (request.LayersPrecision.Count > 0)
        {
            args.Add($"--layerPrecisions={string.Join(',', request.LayersPrecision)}");
            args.Add("--precisionConstraints=obey");
        }

        args.Add("--skipInference");
        args.Add("--verbose");
        return args;
    }

    /// <summary>Runs a built engine once on <paramref name="inputFile"/> (raw little-endian float32) and writes its outputs to <paramref name="outputJson"/>.</summary>
    public static IReadOnlyList<string> Run(string enginePath, string inputName, string inputFile, string outputJson, ShapeProfile profile, int batch)
    {
        var input = QuoteName(inputName);
        var args = new List<string>
        {
            $"--loadEngine={enginePath}",
            $"--loadInputs={input}:{inputFile}",
            $"--exportOutput={outputJson}",
        };
        if (profile.DynamicShapes)
        {
            args.Add($"--shapes={input}:{profile.Shape(batch)}");
        }

        args.Add("--iterations=1");
        args.Add("--warmUp=0");
        args.Add("--duration=0");
        args.Add("--avgRuns=1");
        return args;
    }

    /// <summary>trtexec reads "name:value"; a tensor name holding ':' is written in single quotes.</summary>
    private static string QuoteName(string name) => name.Contains(':') ? $"'{name}'" : name;
}
