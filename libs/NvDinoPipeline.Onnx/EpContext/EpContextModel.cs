using System.Text;
using NvDinoPipeline.Onnx.Proto;

namespace NvDinoPipeline.Onnx.EpContext;

/// <summary>
/// ONNX Runtime's EP-context model for a prebuilt TensorRT engine: one <c>com.microsoft</c> <c>EPContext</c> node
/// whose <c>ep_cache_context</c> names the engine file beside the model (<c>embed_mode</c> 0), with the source
/// model's inputs and outputs. ONNX Runtime's TensorRT provider deserialises that engine instead of building one.
/// What ONNX Runtime does not read (GPU name, engine SHA-256, precision) is kept in the model's <c>metadata_props</c>.
/// </summary>
public static class EpContextModel
{
    public const string OpType = "EPContext";
    public const string Domain = "com.microsoft";

    /// <summary>The provider that loads the context (the <c>source</c> attribute, as ONNX Runtime's providers write it).</summary>
    public const string TensorRtProvider = "TensorrtExecutionProvider";

    private const string MetadataPrefix = "nvdino.tensorrt.";
    private const string GpuKey = MetadataPrefix + "gpu";
    private const string EngineSha256Key = MetadataPrefix + "engine_sha256";
    private const string PrecisionKey = MetadataPrefix + "precision";

    /// <summary>The wrapper of an engine built from <paramref name="source"/>: its graph inputs (initializers excluded) and outputs, one EPContext node.</summary>
    public static ModelProto Create(ModelProto source, TensorRtEngineContext context)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(context);
        var graph = source.Graph ?? throw new ArgumentException("The source model has no graph.", nameof(source));
        CheckRelative(context.EngineFile, "engine file");
        CheckRelative(context.SourceOnnxFile, "source ONNX file");

        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var inputs = graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
        var node = new NodeProto { Name = "tensorrt_engine", OpType = OpType, Domain = Domain };
        node.Input.AddRange(inputs.Select(i => i.Name!));
        node.Output.AddRange(graph.Output.Select(o => o.Name!));
        node.Attribute.AddRange(
        [
            OnnxAttribute.Int("main_context", 1),
            OnnxAttribute.Int("embed_mode", 0),
            OnnxAttribute.String("ep_cache_context", context.EngineFile),
            OnnxAttribute.String("hardware_architecture", TensorRtEngineContext.HardwareArchitecture(context.ComputeCapability)),
            OnnxAttribute.String("ep_sdk_version", context.TensorRtVersion),
            OnnxAttribute.String("onnx_model_filename", context.SourceOnnxFile),
            OnnxAttribute.String("source", TensorRtProvider),
            OnnxAttribute.String("notes", $"TensorRT {context.TensorRtVersion} {context.Precision} engine built by trtexec on {context.Gpu} " +
                $"(compute capability {context.ComputeCapability}) from {context.SourceOnnxFile}"),
        ]);

        var wrapper = new GraphProto { Name = "tensorrt_engine" };
        wrapper.Node.Add(node);
        wrapper.Input.AddRange(inputs);
        wrapper.Output.AddRange(graph.Output);

        var model = new ModelProto
        {
            IrVersion = source.IrVersion,
            ProducerName = "NvDinoPipeline",
            ProducerVersion = typeof(EpContextModel).Assembly.GetName().Version?.ToString(),
            Graph = wrapper,
        };
        model.OpsetImport.AddRange(source.OpsetImport.Where(o => o.Domain is null or "" or "ai.onnx"));
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = Domain, Version = 1 });
        model.MetadataProps.AddRange(
        [
            new StringStringEntryProto { Key = GpuKey, Value = context.Gpu },
            new StringStringEntryProto { Key = EngineSha256Key, Value = context.EngineSha256 },
            new StringStringEntryProto { Key = PrecisionKey, Value = context.Precision },
        ]);
        return model;
    }

    /// <summary>
    /// The engine context of an EP-context model written by <see cref="Create"/>; null for a model without an EPContext node.
    /// </summary>
    /// <exception cref="InvalidDataException">The model has an EPContext node this project cannot use; the message names <paramref name="source"/> and what is wrong.</exception>
    public static TensorRtEngineContext? Read(ModelProto model, string source)
    {
        ArgumentNullException.ThrowIfNull(model);
        var nodes = model.Graph?.Node.Where(n => n.OpType == OpType && n.Domain == Domain).ToList() ?? [];
        if (nodes.Count == 0)
        {
            return null;
        }

        if (nodes.Count > 1 || model.Graph!.Node.Count > 1)
        {
            throw new InvalidDataException($"EP-context model '{source}' has {model.Graph!.Node.Count} nodes; one EPContext node over the whole engine was expected.");
        }

        var node = nodes[0];
        string? Text(string name) => node.Attribute.FirstOrDefault(a => a.Name == name) is { S: { } bytes } ? Encoding.UTF8.GetString(bytes) : null;
        long? Number(string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.I;
        string Required(string? value, string what) =>
            value is { Length: > 0 } ? value : throw new InvalidDataException($"EP-context model '{source}' does not record {what}.");

        if (Number("embed_mode") is not 0)
        {
            throw new InvalidDataException($"EP-context model '{source}' embeds its engine (embed_mode 1); this project writes and reads engines beside the model.");
        }

        var loadedBy = Text("source");
        if (loadedBy is not null && loadedBy != TensorRtProvider)
        {
            throw new InvalidDataException($"EP-context model '{source}' was written for '{loadedBy}', not ONNX Runtime's {TensorRtProvider}.");
        }

        string Metadata(string key) => model.MetadataProps.FirstOrDefault(p => p.Key == key)?.Value ?? "";
        var engineFile = Required(Text("ep_cache_context"), "its engine file (ep_cache_context)");
        var onnxFile = Required(Text("onnx_model_filename"), "the ONNX model the engine was built from (onnx_model_filename)");
        CheckRelative(engineFile, $"engine file of '{source}'");
        CheckRelative(onnxFile, $"source ONNX file of '{source}'");
        string computeCapability;
        try
        {
            computeCapability = TensorRtEngineContext.ComputeCapabilityOf(Required(Text("hardware_architecture"), "the GPU's compute capability (hardware_architecture)"));
        }
        catch (FormatException exception)
        {
            throw new InvalidDataException($"EP-context model '{source}': {exception.Message}", exception);
        }

        return new TensorRtEngineContext
        {
            EngineFile = engineFile,
            EngineSha256 = Required(Metadata(EngineSha256Key), $"the engine's SHA-256 ({EngineSha256Key})"),
            SourceOnnxFile = onnxFile,
            TensorRtVersion = Required(Text("ep_sdk_version"), "the TensorRT version (ep_sdk_version)"),
            Gpu = Required(Metadata(GpuKey), $"the GPU ({GpuKey})"),
            ComputeCapability = computeCapability,
            Precision = Required(Metadata(PrecisionKey), $"the precision ({PrecisionKey})"),
        };
    }

    /// <summary>ONNX Runtime refuses an absolute <c>ep_cache_context</c> or one with "..": the engine must sit in the model's folder or below.</summary>
    private static void CheckRelative(string path, string what)
    {
        if (string.IsNullOrWhiteSpace(path) || Path.IsPathRooted(path) || path.Contains("..", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"The {what} '{path}' must be a path relative to the EP-context model, inside its folder.");
        }
    }
}
