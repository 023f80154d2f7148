using System.Security.Cryptography;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.EpContext;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Inference.Tests.Support;

/// <summary>
/// What a tensorrt engine generation job leaves in its folder, laid out as that stage does: a stand-in engine file
/// (no TensorRT here), the ONNX model it stands for, its EP-context model and <c>model.json</c> naming the latter.
/// </summary>
public sealed record EngineJobFolder(Uri Folder, Uri EngineUri, Uri MetadataUri, TensorRtEngineContext Context)
{
    public static readonly TensorRtEngineContext BuiltOn = new()
    {
        EngineFile = "model.engine",
        EngineSha256 = "",
        SourceOnnxFile = "model.onnx",
        TensorRtVersion = "10.3.0",
        Gpu = "NVIDIA A100-SXM4-40GB",
        ComputeCapability = "8.0",
        Precision = "fp16",
    };

    public static async Task<EngineJobFolder> WriteAsync(IArtifactStore store, TinyVit model, string localFolder, Uri folder, byte[]? engine = null)
    {
        Directory.CreateDirectory(localFolder);
        engine ??= "serialized engine\n"u8.ToArray();
        var enginePath = Path.Combine(localFolder, "model.engine");
        await File.WriteAllBytesAsync(enginePath, engine);
        var context = BuiltOn with { EngineSha256 = Convert.ToHexStringLower(SHA256.HashData(engine)) };
        var contextPath = Path.Combine(localFolder, "model_ctx.onnx");
        OnnxModelWriter.Save(EpContextModel.Create(OnnxModelReader.Load(model.ModelPath), context), contextPath);
        var metadataPath = Path.Combine(localFolder, "model.json");
        await File.WriteAllTextAsync(metadataPath, (model.Metadata with { OnnxFile = "model_ctx.onnx" }).ToJson());

        var engineUri = folder.Append("model.engine");
        await store.PutFileAsync(engineUri, enginePath, CancellationToken.None);
        await store.PutFileAsync(folder.Append("model_ctx.onnx"), contextPath, CancellationToken.None);
        await store.PutFileAsync(folder.Append("model.onnx"), model.ModelPath, CancellationToken.None);
        await store.PutFileAsync(folder.Append("model.json"), metadataPath, CancellationToken.None);
        return new EngineJobFolder(folder, engineUri, folder.Append("model.json"), context);
    }

    public DeployedModelReference Reference => new(DeployedModelReference.TensorRtTarget, EngineUri, MetadataUri);
}

/// <summary>A host as the loader would see it: the providers ONNX Runtime offers, and the TensorRT and GPU behind them.</summary>
public sealed record StandInHardware(IReadOnlyList<string> Providers, TensorRtHostInfo Host) : IInferenceHardware
{
    public static StandInHardware TensorRt(string version = "10.3.0", string gpu = "NVIDIA A100-SXM4-40GB", string capability = "8.0") =>
        new([ExecutionProviders.TensorRtProvider, ExecutionProviders.CudaProvider, ExecutionProviders.CpuProvider], new TensorRtHostInfo(version, gpu, capability, []));

    public IReadOnlyList<string> AvailableProviders() => Providers;

    public TensorRtHostInfo TensorRt(int deviceId) => Host;
}
