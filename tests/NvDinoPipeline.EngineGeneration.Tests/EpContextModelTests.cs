using System.Text;
using NvDinoPipeline.EngineGeneration.Tests.Support;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.EpContext;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.EngineGeneration.Tests;

/// <summary>The EP-context model that hands a prebuilt engine to ONNX Runtime's TensorRT provider: what it holds and what reading it refuses.</summary>
public sealed class EpContextModelTests
{
    private static readonly TensorRtEngineContext Context = new()
    {
        EngineFile = "model.engine",
        EngineSha256 = "ab12",
        SourceOnnxFile = "model.onnx",
        TensorRtVersion = "10.3.0",
        Gpu = "NVIDIA L4",
        ComputeCapability = "8.9",
        Precision = "fp16",
    };

    private static string Text(NodeProto node, string name) => Encoding.UTF8.GetString(node.Attribute.Single(a => a.Name == name).S!);

    [Fact]
    public void Holds_one_epcontext_node_over_the_models_inputs_and_outputs_with_the_attributes_onnx_runtime_reads()
    {
        var source = TinyVit.Build();

        var model = EpContextModel.Create(source, Context);

        var node = Assert.Single(model.Graph!.Node);
        Assert.Equal(("EPContext", "com.microsoft"), (node.OpType, node.Domain));
        Assert.Equal(["input"], node.Input);
        Assert.Equal(source.Graph!.Output.Select(o => o.Name), node.Output);
        Assert.Equal(["input"], model.Graph.Input.Select(i => i.Name));
        Assert.Empty(model.Graph.Initializer);
        Assert.Equal((0L, 1L), (node.Attribute.Single(a => a.Name == "embed_mode").I, node.Attribute.Single(a => a.Name == "main_context").I));
        Assert.Equal("model.engine", Text(node, "ep_cache_context"));
        Assert.Equal("89", Text(node, "hardware_architecture"));
        Assert.Equal("10.3.0", Text(node, "ep_sdk_version"));
        Assert.Equal("model.onnx", Text(node, "onnx_model_filename"));
        Assert.Equal("TensorrtExecutionProvider", Text(node, "source"));
        Assert.Contains(model.OpsetImport, o => o.Domain == "com.microsoft" && o.Version == 1);
        Assert.Equal(Context, EpContextModel.Read(model, "wrapper"));
    }

    [Fact]
    public void Is_a_valid_onnx_model_with_a_dynamic_batch()
    {
        using var folder = new TempDirectory("nvdino-epcontext");
        var path = folder.Combine("model_ctx.onnx");

        OnnxModelWriter.Save(EpContextModel.Create(TinyVit.Build(), Context), path);

        OnnxChecker.AssertValid(path);
        var input = OnnxModelReader.Load(path).Graph!.Input.Single();
        Assert.Equal([null, 3, 32, 32], input.Type!.TensorType!.Shape!.Dim.Select(d => d.DimValue));
    }

    [Fact]
    public void A_model_without_an_epcontext_node_has_no_engine_context() =>
        Assert.Null(EpContextModel.Read(TinyVit.Build(), "model.onnx"));

    [Theory]
    [InlineData("/engines/model.engine")]
    [InlineData("../model.engine")]
    public void An_engine_outside_the_models_folder_is_refused(string engineFile)
    {
        var error = Assert.Throws<InvalidDataException>(() => EpContextModel.Create(TinyVit.Build(), Context with { EngineFile = engineFile }));

        Assert.Contains(engineFile, error.Message);
        Assert.Contains("inside its folder", error.Message);
    }

    [Fact]
    public void An_embedded_engine_or_another_providers_context_is_refused_naming_the_model()
    {
        var embedded = EpContextModel.Create(TinyVit.Build(), Context);
        embedded.Graph!.Node[0].Attribute.Single(a => a.Name == "embed_mode").I = 1;
        var openVino = EpContextModel.Create(TinyVit.Build(), Context);
        openVino.Graph!.Node[0].Attribute.Single(a => a.Name == "source").S = Encoding.UTF8.GetBytes("OpenVINOExecutionProvider");

        Assert.Contains("embeds its engine", Assert.Throws<InvalidDataException>(() => EpContextModel.Read(embedded, "a_ctx.onnx")).Message);
        Assert.Contains("'OpenVINOExecutionProvider'", Assert.Throws<InvalidDataException>(() => EpContextModel.Read(openVino, "b_ctx.onnx")).Message);
    }

    [Fact]
    public void A_context_without_the_recorded_gpu_is_refused()
    {
        var model = EpContextModel.Create(TinyVit.Build(), Context);
        model.MetadataProps.RemoveAll(p => p.Key == "nvdino.tensorrt.gpu");

        var error = Assert.Throws<InvalidDataException>(() => EpContextModel.Read(model, "c_ctx.onnx"));

        Assert.Contains("c_ctx.onnx", error.Message);
        Assert.Contains("the GPU", error.Message);
    }

    [Theory]
    [InlineData("8.0", "80")]
    [InlineData("8.6", "86")]
    [InlineData("12.0", "120")]
    public void Compute_capabilities_are_written_as_onnx_runtime_compares_them(string capability, string architecture)
    {
        Assert.Equal(architecture, TensorRtEngineContext.HardwareArchitecture(capability));
        Assert.Equal(capability, TensorRtEngineContext.ComputeCapabilityOf(architecture));
    }

    [Theory]
    [InlineData("10.3.0", 100300L)]
    [InlineData("8.6.1", 8601L)]
    [InlineData("10.13.2.6", 101302L)]
    public void TensorRt_versions_encode_as_nv_tensorrt_version(string version, long encoded)
    {
        Assert.Equal(encoded, TensorRtVersion.Encode(version));
        Assert.True(TensorRtVersion.SameRelease(version, TensorRtVersion.Decode(encoded)));
    }
}
