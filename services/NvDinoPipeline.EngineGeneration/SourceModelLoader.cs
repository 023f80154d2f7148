using NvDinoPipeline.Deployment;
using NvDinoPipeline.EngineGeneration.TensorRt;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>
/// Fetches and checks the model a job builds from: the ONNX file (or <c>gen_trt_engine.onnx_file</c>), its metadata,
/// the input and output the metadata names, the optimisation profile and the layer names of <c>layers_precision</c>.
/// </summary>
internal sealed class SourceModelLoader(IArtifactStore store)
{
    public async Task<SourceModel> LoadAsync(EngineJob job, CancellationToken cancellationToken)
    {
        var command = job.Command;
        var metadata = await ReadMetadataAsync(command.ModelMetadataUri, cancellationToken);
        var onnxUri = job.Settings.OnnxFile is { } onnxFile
            ? EngineLocations.ObjectUri(onnxFile, EngineLocations.FolderOf(command.OnnxModelUri), "gen_trt_engine.onnx_file")
            : command.OnnxModelUri;
        var modelPath = await FetchModelAsync(onnxUri, job.Downloads, cancellationToken);
        var sha256 = await Task.Run(() => ActivationCalibrator.Sha256Of(modelPath), cancellationToken);
        ModelProto model;
        try
        {
            // Only quantisation reads the weights; the other builds need the graph alone.
            model = OnnxModelReader.Load(modelPath, loadExternalData: job.Settings.IsInt8);
        }
        catch (Exception exception) when (exception is InvalidDataException or ProtoBuf.ProtoException or EndOfStreamException or IOException)
        {
            throw new StageInputException($"{onnxUri} is not a readable ONNX model: {exception.Message}", exception);
        }

        var graph = model.Graph!;
        var input = graph.Input.FirstOrDefault(i => i.Name == metadata.Input.Name)
            ?? throw new StageInputException(
                $"{onnxUri} has inputs [{string.Join(", ", graph.Input.Select(i => i.Name))}], but its metadata {command.ModelMetadataUri} describes input '{metadata.Input.Name}'.");
        var outputName = metadata.Outputs[0].Name;
        if (graph.Output.All(o => o.Name != outputName))
        {
            throw new StageInputException(
                $"{onnxUri} has outputs [{string.Join(", ", graph.Output.Select(o => o.Name))}], but its metadata {command.ModelMetadataUri} names the embedding '{outputName}'.");
        }

        CheckLayerNames(job.Settings.LayersPrecision, graph);
        var profile = Profile(job.Settings, metadata, input, onnxUri);
        return new SourceModel(onnxUri, modelPath, sha256, model, metadata, input.Name!, outputName, profile)
        {
            Description = new EngineSource(onnxUri.AbsoluteUri, sha256, command.ModelMetadataUri.AbsoluteUri),
        };
    }

    private async Task<ModelMetadata> ReadMetadataAsync(Uri uri, CancellationToken cancellationToken)
    {
        try
        {
            return await store.ReadMetadataAsync(uri, cancellationToken);
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }

    private async Task<string> FetchModelAsync(Uri uri, string folder, CancellationToken cancellationToken)
    {
        try
        {
            return await store.FetchModelAsync(uri, folder, cancellationToken);
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }

    /// <summary>
    /// The one optimisation profile: the spec's min/opt/max (or its fixed <c>batch_size</c>), at the metadata's
    /// pre-processing size; a model exported with a fixed batch allows only that batch.
    /// </summary>
    private static ShapeProfile Profile(EngineSettings settings, ModelMetadata metadata, ValueInfoProto input, Uri onnxUri)
    {
        var dims = input.Type?.TensorType?.Shape?.Dim;
        if (dims is null || dims.Count != 4)
        {
            throw new StageInputException($"Input '{input.Name}' of {onnxUri} is not a [B,C,H,W] tensor.");
        }

        var (height, width) = (metadata.Preprocessing.Height, metadata.Preprocessing.Width);
        foreach (var (index, size, name) in new[] { (2, height, "height"), (3, width, "width") })
        {
            if (dims[index].DimValue is > 0 and var fixedSize && fixedSize != size)
            {
                throw new StageInputException(
                    $"Input '{input.Name}' of {onnxUri} has a fixed {name} of {fixedSize}, but its metadata pre-processes images to {size}.");
            }
        }

        var channels = (int)(dims[1].DimValue ?? 3);
        var dynamic = dims.Any(d => d.DimValue is null or <= 0);
        if (dims[0].DimValue is > 0 and var fixedBatch)
        {
            if (settings.BatchSize != -1 && settings.BatchSize != fixedBatch)
            {
                throw new StageInputException(
                    $"gen_trt_engine.batch_size is {settings.BatchSize}, but {onnxUri} was exported with a fixed batch of {fixedBatch}; use -1 or {fixedBatch}.");
            }

            return new ShapeProfile((int)fixedBatch, (int)fixedBatch, (int)fixedBatch, channels, height, width, dynamic);
        }

        return settings.BatchSize == -1
            ? new ShapeProfile(settings.MinBatchSize, settings.OptBatchSize, settings.MaxBatchSize, channels, height, width, dynamic)
            : new ShapeProfile(settings.BatchSize, settings.BatchSize, settings.BatchSize, channels, height, width, dynamic);
    }

    private static void CheckLayerNames(IReadOnlyList<LayerPrecision> layers, GraphProto graph)
    {
        var nodes = graph.Node.Where(n => !string.IsNullOrEmpty(n.Name)).ToDictionary(n => n.Name!, StringComparer.Ordinal);
        foreach (var layer in layers)
        {
            if (layer.Layer.Contains('*'))
            {
                continue;
            }

            if (!nodes.TryGetValue(layer.Layer, out var node))
            {
                var closest = nodes.Keys.MinBy(name => EditDistance.Levenshtein(name, layer.Layer));
                throw new StageInputException(
                    $"gen_trt_engine.tensorrt.layers_precision names '{layer.Layer}', which is no node of the model" +
                    (closest is null ? "." : $"; did you mean '{closest}'?"));
            }

            if (layer.Precision == Precisions.Int8 && node.OpType is not ("MatMul" or "Gemm" or "Conv"))
            {
                throw new StageInputException(
                    $"gen_trt_engine.tensorrt.layers_precision asks for '{layer}', a {node.OpType} node: only MatMul, Gemm and Conv nodes are quantised to int8.");
            }
        }
    }
}
