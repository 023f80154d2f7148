using System.Text.Json;
using NvDinoPipeline.Onnx;

namespace NvDinoPipeline.Onnx.Tests.Support;

internal sealed record FixtureModel(string Name, VitFfnKind Ffn, int NumRegisterTokens, IReadOnlyDictionary<string, NamedWeight> Weights);

internal sealed record FixtureCase(string Model, string Input, double InterpolateOffset, NamedWeight Output, NamedWeight PatchTokens);

/// <summary>Tiny DINOv2 backbones, inputs and reference outputs made by Fixtures/make_fixtures.py with PyTorch.</summary>
internal sealed class VitFixtures
{
    private static readonly Lazy<VitFixtures> Loaded = new(() => Load(Path.Combine(AppContext.BaseDirectory, "Fixtures")));

    private VitFixtures(int embedDim, int depth, int numHeads, int patchSize, int imageSize,
        IReadOnlyDictionary<string, FixtureModel> models, IReadOnlyDictionary<string, NamedWeight> inputs, IReadOnlyList<FixtureCase> cases)
    {
        EmbedDim = embedDim;
        Depth = depth;
        NumHeads = numHeads;
        PatchSize = patchSize;
        ImageSize = imageSize;
        Models = models;
        Inputs = inputs;
        Cases = cases;
    }

    public static VitFixtures Instance => Loaded.Value;

    public static IEnumerable<string> ModelNames => ["mlp_layerscale", "mlp_registers", "swiglu", "swiglu_registers_layerscale"];

    public int EmbedDim { get; }
    public int Depth { get; }
    public int NumHeads { get; }
    public int PatchSize { get; }
    public int ImageSize { get; }
    public IReadOnlyDictionary<string, FixtureModel> Models { get; }
    public IReadOnlyDictionary<string, NamedWeight> Inputs { get; }
    public IReadOnlyList<FixtureCase> Cases { get; }

    public VitGraphConfig Config(string model, double interpolateOffset) => new()
    {
        EmbedDim = EmbedDim,
        Depth = Depth,
        NumHeads = NumHeads,
        PatchSize = PatchSize,
        ImageSize = ImageSize,
        NumRegisterTokens = Models[model].NumRegisterTokens,
        Ffn = Models[model].Ffn,
        InterpolateOffset = interpolateOffset,
    };

    public FixtureCase Case(string model, string input, double interpolateOffset) =>
        Cases.Single(c => c.Model == model && c.Input == input && c.InterpolateOffset == interpolateOffset);

    private static VitFixtures Load(string folder)
    {
        var blob = File.ReadAllBytes(Path.Combine(folder, "fixtures.bin"));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "fixtures.json")));
        var root = json.RootElement;

        NamedWeight Tensor(JsonElement entry)
        {
            var shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var offset = entry.GetProperty("offset").GetInt32();
            var count = (int)shape.Aggregate(1L, (a, d) => a * d);
            var data = new float[count];
            Buffer.BlockCopy(blob, offset, data, 0, count * sizeof(float));
            return new NamedWeight(data, shape);
        }

        var models = root.GetProperty("models").EnumerateObject().ToDictionary(
            m => m.Name,
            m => new FixtureModel(
                m.Name,
                m.Value.GetProperty("ffn").GetString() == "mlp" ? VitFfnKind.Mlp : VitFfnKind.SwiGlu,
                m.Value.GetProperty("num_register_tokens").GetInt32(),
                m.Value.GetProperty("weights").EnumerateObject().ToDictionary(w => w.Name, w => Tensor(w.Value))));
        var inputs = root.GetProperty("inputs").EnumerateObject().ToDictionary(i => i.Name, i => Tensor(i.Value));
        var cases = root.GetProperty("cases").EnumerateArray().Select(c => new FixtureCase(
            c.GetProperty("model").GetString()!,
            c.GetProperty("input").GetString()!,
            c.GetProperty("interpolate_offset").GetDouble(),
            Tensor(c.GetProperty("output")),
            Tensor(c.GetProperty("patch_tokens")))).ToList();

        return new VitFixtures(
            root.GetProperty("embed_dim").GetInt32(),
            root.GetProperty("depth").GetInt32(),
            root.GetProperty("num_heads").GetInt32(),
            root.GetProperty("patch_size").GetInt32(),
            root.GetProperty("image_size").GetInt32(),
            models,
            inputs,
            cases);
    }
}
