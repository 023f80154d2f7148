using NvDinoPipeline.Onnx;

namespace NvDinoPipeline.Testing;

/// <summary>
/// Random DINOv2 ViT weights (MLP or SwiGLU FFN as <see cref="VitGraphConfig.Ffn"/> says, LayerScale, register tokens) under the checkpoint keys the ONNX graph builder reads. Each value is
/// <c>mean + scale·u</c> with <c>u</c> uniform in [-1, 1), drawn in key order from one seeded generator, so a seed and
/// a set of scales always give the same model.
/// </summary>
public static class RandomVit
{
    /// <summary>Spread of each kind of weight; a null scale means 1/√fan-in.</summary>
    public sealed record Scales
    {
        public float ClsToken { get; init; } = 0.02f;
        public float PosEmbed { get; init; } = 0.02f;
        public float? PatchWeight { get; init; }
        public float Bias { get; init; } = 0.01f;
        public float? Linear { get; init; }
        public float? Fc2 { get; init; }
        public float LayerScale { get; init; } = 0.05f;
        public float LayerScaleMean { get; init; } = 0.3f;
    }

    public static Dictionary<string, NamedWeight> Weights(VitGraphConfig config, int seed, Scales? scales = null)
    {
        var s = scales ?? new Scales();
        var rng = new Random(seed);
        var weights = new Dictionary<string, NamedWeight>();
        var d = config.EmbedDim;
        void Add(string key, float scale, float mean, params long[] shape)
        {
            var data = new float[shape.Aggregate(1L, (a, n) => a * n)];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = mean + scale * (rng.NextSingle() * 2 - 1);
            }

            weights[key] = new NamedWeight(data, shape);
        }

        var grid = config.GridSize;
        var p = config.PatchSize;
        var linear = s.Linear ?? 1f / MathF.Sqrt(d);
        // DINOv2's SwiGLUFFNFused rounds its hidden size, 4·D·2/3, up to a multiple of 8.
        var hidden = config.Ffn == VitFfnKind.Mlp ? 4 * d : (4 * d * 2 / 3 + 7) / 8 * 8;
        Add("cls_token", s.ClsToken, 0, 1, 1, d);
        if (config.NumRegisterTokens > 0)
            Add("register_tokens", s.ClsToken, 0, 1, config.NumRegisterTokens, d);
        Add("pos_embed", s.PosEmbed, 0, 1, 1 + grid * grid, d);
        Add("patch_embed.proj.weight", s.PatchWeight ?? 1f / MathF.Sqrt(3 * p * p), 0, d, 3, p, p);
        Add("patch_embed.proj.bias", s.Bias, 0, d);
        for (var i = 0; i < config.Depth; i++)
        {
            var b = $"blocks.{i}.";
            Add(b + "norm1.weight", 0.1f, 1, d);
            Add(b + "norm1.bias", s.Bias, 0, d);
            Add(b + "attn.qkv.weight", linear, 0, 3 * d, d);
            Add(b + "attn.qkv.bias", s.Bias, 0, 3 * d);
            Add(b + "attn.proj.weight", linear, 0, d, d);
            Add(b + "attn.proj.bias", s.Bias, 0, d);
            Add(b + "ls1.gamma", s.LayerScale, s.LayerScaleMean, d);
            Add(b + "norm2.weight", 0.1f, 1, d);
            Add(b + "norm2.bias", s.Bias, 0, d);
            if (config.Ffn == VitFfnKind.Mlp)
            {
                Add(b + "mlp.fc1.weight", linear, 0, hidden, d);
                Add(b + "mlp.fc1.bias", s.Bias, 0, hidden);
                Add(b + "mlp.fc2.weight", s.Fc2 ?? 1f / MathF.Sqrt(hidden), 0, d, hidden);
                Add(b + "mlp.fc2.bias", s.Bias, 0, d);
            }
            else
            {
                Add(b + "mlp.w12.weight", linear, 0, 2 * hidden, d);
                Add(b + "mlp.w12.bias", s.Bias, 0, 2 * hidden);
                Add(b + "mlp.w3.weight", s.Fc2 ?? 1f / MathF.Sqrt(hidden), 0, d, hidden);
                Add(b + "mlp.w3.bias", s.Bias, 0, d);
            }
            Add(b + "ls2.gamma", s.LayerScale, s.LayerScaleMean, d);
        }

        Add("norm.weight", 0.1f, 1, d);
        Add("norm.bias", s.Bias, 0, d);
        return weights;
    }
}
