using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace NvDinoPipeline.Inference;

/// <summary>The GPU and TensorRT library an engine would run on here; null where this host has none, with the reason in <see cref="Problems"/>.</summary>
public sealed record TensorRtHostInfo(string? TensorRtVersion, string? Gpu, string? ComputeCapability, IReadOnlyList<string> Problems);

/// <summary>What this host can run a model on: ONNX Runtime's execution providers, and for TensorRT the library and GPU behind them.</summary>
public interface IInferenceHardware
{
    /// <summary>The providers compiled into the ONNX Runtime this process loaded.</summary>
    IReadOnlyList<string> AvailableProviders();

    /// <summary>The TensorRT library ONNX Runtime's TensorRT provider loads, and the GPU <paramref name="deviceId"/>.</summary>
    TensorRtHostInfo TensorRt(int deviceId);
}

/// <summary>
/// The hardware as the process sees it: ONNX Runtime's providers, the TensorRT version from <c>libnvinfer</c>'s
/// <c>getInferLibVersion</c>, and the GPU's name and compute capability from the CUDA driver (<c>libcuda.so.1</c>,
/// which honours <c>CUDA_VISIBLE_DEVICES</c> as ONNX Runtime's device ids do).
/// </summary>
public sealed partial class NativeInferenceHardware : IInferenceHardware
{
    private const string CudaDriver = "libcuda.so.1";

    // ONNX Runtime 1.31's TensorRT provider links TensorRT 10; the unversioned name covers a development install.
    private static readonly string[] TensorRtLibraries = ["libnvinfer.so.10", "libnvinfer.so"];

    private const int ComputeCapabilityMajor = 75;
    private const int ComputeCapabilityMinor = 76;

    public IReadOnlyList<string> AvailableProviders() => ExecutionProviders.Available();

    public TensorRtHostInfo TensorRt(int deviceId)
    {
        var problems = new List<string>();
        var version = TensorRtVersion(problems);
        var (gpu, capability) = Gpu(deviceId, problems);
        return new TensorRtHostInfo(version, gpu, capability, problems);
    }

    private static string? TensorRtVersion(List<string> problems)
    {
        foreach (var name in TensorRtLibraries)
        {
            if (!NativeLibrary.TryLoad(name, out var library))
            {
                continue;
            }

            if (!NativeLibrary.TryGetExport(library, "getInferLibVersion", out var export))
            {
                problems.Add($"{name} has no getInferLibVersion");
                return null;
            }

            unsafe
            {
                return Onnx.EpContext.TensorRtVersion.Decode(((delegate* unmanaged<int>)export)());
            }
        }

        problems.Add($"no TensorRT library ({string.Join(", ", TensorRtLibraries)}) could be loaded");
        return null;
    }

    private static (string? Name, string? ComputeCapability) Gpu(int deviceId, List<string> problems)
    {
        if (!NativeLibrary.TryLoad(CudaDriver, out _))
        {
            problems.Add($"the CUDA driver ({CudaDriver}) is not installed");
            return (null, null);
        }

        try
        {
            Check(cuInit(0), "cuInit");
            Check(cuDeviceGet(out var device, deviceId), $"cuDeviceGet({deviceId})");
            var name = new byte[256];
            Check(cuDeviceGetName(ref name[0], name.Length, device), "cuDeviceGetName");
            Check(cuDeviceGetAttribute(out var major, ComputeCapabilityMajor, device), "cuDeviceGetAttribute");
            Check(cuDeviceGetAttribute(out var minor, ComputeCapabilityMinor, device), "cuDeviceGetAttribute");
            var length = Array.IndexOf(name, (byte)0);
            return (Encoding.UTF8.GetString(name, 0, length < 0 ? name.Length : length),
                string.Create(CultureInfo.InvariantCulture, $"{major}.{minor}"));
        }
        catch (InvalidOperationException exception)
        {
            problems.Add($"GPU {deviceId}: {exception.Message}");
            return (null, null);
        }
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
        {
            throw new InvalidOperationException($"{call} returned CUDA error {result}");
        }
    }

    [LibraryImport(CudaDriver)]
    private static partial int cuInit(uint flags);

    [LibraryImport(CudaDriver)]
    private static partial int cuDeviceGet(out int device, int ordinal);

    [LibraryImport(CudaDriver)]
    private static partial int cuDeviceGetName(ref byte name, int length, int device);

    [LibraryImport(CudaDriver)]
    private static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
}
