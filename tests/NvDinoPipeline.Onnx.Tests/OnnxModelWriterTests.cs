using NvDinoPipeline.Testing;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Onnx.Tests.Support;

namespace NvDinoPipeline.Onnx.Tests;

public sealed class OnnxModelWriterTests : IDisposable
{
    private const string Model = "swiglu_registers_layerscale";
    private readonly TempFolder _folder = new();
    private readonly VitFixtures _fixtures = VitFixtures.Instance;

    [Fact]
    public void Model_over_the_threshold_keeps_its_weights_in_an_external_data_file_that_onnx_runtime_loads()
    {
        var model = BuildVit(new VitExportOptions { DynamicHeightWidth = true });
        var path = _folder.File("external.onnx");

        var saved = OnnxModelWriter.Save(model, path, new OnnxSaveOptions { ExternalDataThresholdBytes = 0 });

        Assert.Equal(path + ".data", saved.ExternalDataPath);
        Assert.True(File.Exists(saved.ExternalDataPath));
        var written = OnnxModelReader.Load(path);
        var external = written.Graph!.Initializer.Where(t => t.DataLocation == TensorDataLocation.External).ToList();
        Assert.Contains(external, t => t.Name == "blocks.0.attn.q.weight_t");
        Assert.All(external, t =>
        {
            Assert.Null(t.RawData);
            var entries = t.ExternalData.ToDictionary(e => e.Key!, e => e.Value);
            Assert.Equal("external.onnx.data", entries["location"]);
            Assert.Equal(0, long.Parse(entries["offset"]!) % 4096);
        });
        Assert.All(written.Graph.Initializer.Except(external), t => Assert.True(t.RawData!.Length < 1024));
        Assert.True(saved.ModelBytes < saved.ExternalDataBytes);

        using var runner = new OnnxModelRunner(path, intraOpThreads: 1);
        Assert.Empty(runner.CreationWarnings!);
        var expected = _fixtures.Case(Model, "wide_b2", 0.1);
        var input = _fixtures.Inputs["wide_b2"];
        var cls = runner.Run(input.Data, input.Shape).Single(o => o.Name == "output");
        Assert.True(OnnxParity.Compare(expected.Output.Data, cls.Data, _fixtures.EmbedDim).IsWithin(1e-4, 0.99999));
        OnnxChecker.AssertValid(path);
    }

    [Fact]
    public void External_and_inline_saves_hold_the_same_tensors()
    {
        var model = BuildVit();
        OnnxModelWriter.Save(model, _folder.File("inline.onnx"));
        OnnxModelWriter.Save(model, _folder.File("external.onnx"), new OnnxSaveOptions { ExternalDataThresholdBytes = 0, MinExternalTensorBytes = 0 });

        var inline = OnnxModelReader.Load(_folder.File("inline.onnx"));
        var restored = OnnxModelReader.Load(_folder.File("external.onnx"), loadExternalData: true);

        Assert.Equal(model.Graph!.Initializer.Count, restored.Graph!.Initializer.Count);
        Assert.All(inline.Graph!.Initializer.Zip(restored.Graph.Initializer), pair =>
        {
            Assert.Equal(pair.First.Name, pair.Second.Name);
            Assert.Equal(pair.First.Dims, pair.Second.Dims);
            Assert.Equal(pair.First.RawData, pair.Second.RawData);
        });
    }

    [Fact]
    public void Model_under_the_threshold_is_one_self_contained_file()
    {
        var saved = OnnxModelWriter.Save(BuildVit(), _folder.File("inline.onnx"));

        Assert.Null(saved.ExternalDataPath);
        Assert.Equal([saved.ModelPath], saved.Files);
        Assert.DoesNotContain(OnnxModelReader.Load(saved.ModelPath).Graph!.Initializer, t => t.DataLocation == TensorDataLocation.External);
    }

    [Fact]
    public void Round_trip_keeps_symbolic_dims_opset_and_zero_valued_attributes()
    {
        var path = _folder.File("dynamic.onnx");
        OnnxModelWriter.Save(BuildVit(new VitExportOptions { DynamicHeightWidth = true }), path);

        var model = OnnxModelReader.Load(path);

        Assert.Equal(8, model.IrVersion);
        Assert.Equal(("", 17L), (model.OpsetImport.Single().Domain ?? "", model.OpsetImport.Single().Version));
        Assert.Equal("batch", model.Graph!.Input.Single().Type!.TensorType!.Shape!.Dim[0].DimParam);
        var resize = model.Graph.Node.Single(n => n.OpType == "Resize");
        Assert.Equal(-0.75f, resize.Attribute.Single(a => a.Name == "cubic_coeff_a").F);
        Assert.Equal(0L, resize.Attribute.Single(a => a.Name == "exclude_outside").I);
        Assert.Equal("", resize.Input[1]);
    }

    [Fact]
    public void Saving_again_replaces_the_file_and_leaves_no_temporary_files()
    {
        var path = _folder.File("model.onnx");
        OnnxModelWriter.Save(BuildVit(new VitExportOptions { IncludePatchTokens = true }), path);

        OnnxModelWriter.Save(BuildVit(), path);

        Assert.Single(OnnxModelReader.Load(path).Graph!.Output);
        Assert.Equal(["model.onnx"], Directory.GetFiles(_folder.Path).Select(Path.GetFileName));
    }

    public void Dispose() => _folder.Dispose();

    private ModelProto BuildVit(VitExportOptions? options = null) =>
        VitOnnxBuilder.Build(_fixtures.Config(Model, 0.1), _fixtures.Models[Model].Weights, options ?? new VitExportOptions());
}
