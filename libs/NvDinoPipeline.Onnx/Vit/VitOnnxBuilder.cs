using System.Globalization;
using NvDinoPipeline.Onnx.Proto;

namespace NvDinoPipeline.Onnx;

/// <summary>
/// Builds the ONNX graph of a DINOv2 ViT backbone from its state-dict weights: input "input" [B,C,H,W] float32 (C = 3),
/// output "output" = final-norm CLS token [B,D], optionally "patch_tokens" [B,N,D].
/// Follows DINOv2's <c>DinoVisionTransformer.forward_features</c>: tokens [cls, registers..., patches],
/// position embedding added before the registers are inserted and bicubically interpolated for other resolutions.
/// </summary>
public static class VitOnnxBuilder
{
    public const string InputName = "input";
    public const string OutputName = "output";
    public const string PatchTokensName = "patch_tokens";
    public const string ProducerName = "NvDinoPipeline";

    public static ModelProto Build(VitGraphConfig config, IReadOnlyDictionary<string, NamedWeight> weights, VitExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(options);
        config.Validate();
        options.Validate(config);
        RejectUnknownKeys(config, weights);
        RejectMissingKeys(config, weights);
        return new Emitter(config, weights, options).Emit();
    }

    /// <summary>The state-dict keys a backbone with <paramref name="config"/> may carry (optional ones included).</summary>
    public static IReadOnlySet<string> KnownKeys(VitGraphConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var keys = new HashSet<string>(StringComparer.Ordinal)
        {
            "cls_token", "pos_embed", "mask_token", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias",
        };
        if (config.NumRegisterTokens > 0)
        {
            keys.Add("register_tokens");
        }

        string[] ffn = config.Ffn == VitFfnKind.Mlp ? ["mlp.fc1", "mlp.fc2"] : ["mlp.w12", "mlp.w3"];
        for (var i = 0; i < config.Depth; i++)
        {
            foreach (var module in (string[])["norm1", "attn.qkv", "attn.proj", "norm2", .. ffn])
            {
                keys.Add($"blocks.{i}.{module}.weight");
                keys.Add($"blocks.{i}.{module}.bias");
            }

            keys.Add($"blocks.{i}.ls1.gamma");
            keys.Add($"blocks.{i}.ls2.gamma");
        }

        return keys;
    }

    private static void RejectMissingKeys(VitGraphConfig config, IReadOnlyDictionary<string, NamedWeight> weights)
    {
        List<string> required = ["cls_token", "pos_embed", "patch_embed.proj.weight", "norm.weight", "norm.bias"];
        if (config.NumRegisterTokens > 0)
        {
            required.Add("register_tokens");
        }

        string[] ffn = config.Ffn == VitFfnKind.Mlp ? ["mlp.fc1.weight", "mlp.fc2.weight"] : ["mlp.w12.weight", "mlp.w3.weight"];
        for (var i = 0; i < config.Depth; i++)
        {
            foreach (var key in (string[])["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.proj.weight", "norm2.weight", "norm2.bias", .. ffn])
            {
                required.Add($"blocks.{i}.{key}");
            }
        }

        var missing = required.Where(k => !weights.ContainsKey(k)).ToList();
        if (missing.Count == 1)
        {
            throw new ArgumentException($"Weight '{missing[0]}' is missing.", nameof(weights));
        }

        if (missing.Count > 1)
        {
            throw new ArgumentException(
                $"{missing.Count} weights are missing: {string.Join(", ", missing.Take(10))}{(missing.Count > 10 ? ", ..." : "")}.",
                nameof(weights));
        }
    }

    private static void RejectUnknownKeys(VitGraphConfig config, IReadOnlyDictionary<string, NamedWeight> weights)
    {
        var known = KnownKeys(config);
        var unknown = weights.Keys.Where(k => !known.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException(
                $"Weights contain {unknown.Count} key(s) that a depth-{config.Depth} {config.Ffn} backbone with " +
                $"{config.NumRegisterTokens} register token(s) does not have: {string.Join(", ", unknown.Take(10))}" +
                (unknown.Count > 10 ? ", ..." : "") + ".",
                nameof(weights));
        }
    }

    private sealed class Emitter(VitGraphConfig config, IReadOnlyDictionary<string, NamedWeight> weights, VitExportOptions options)
    {
        private readonly OnnxGraphBuilder _b = new("dinov2_vit");
        private readonly int _d = config.EmbedDim;
        private readonly int _grid = config.GridSize;
        private string? _inputShape;

        public ModelProto Emit()
        {
            var dynamicHw = options.DynamicHeightWidth;
            var height = options.Height ?? config.ImageSize;
            var width = options.Width ?? config.ImageSize;
            OnnxDim batch = options.DynamicBatch ? OnnxDim.Symbolic("batch") : OnnxDim.Fixed(options.BatchSize);
            OnnxDim heightDim = dynamicHw ? OnnxDim.Symbolic("height") : OnnxDim.Fixed(height);
            OnnxDim widthDim = dynamicHw ? OnnxDim.Symbolic("width") : OnnxDim.Fixed(width);
            var input = _b.AddInput(InputName, TensorDataType.Float, [batch, config.InChannels, heightDim, widthDim]);

            string x;
            using (_b.Scope("patch_embed"))
            {
                var p = config.PatchSize;
                var weight = Get("patch_embed.proj.weight", _d, config.InChannels, p, p);
                var bias = GetOptional("patch_embed.proj.bias", _d);
                string[] convInputs = bias is null
                    ? [input, Initializer("patch_embed.proj.weight", weight)]
                    : [input, Initializer("patch_embed.proj.weight", weight), Initializer("patch_embed.proj.bias", bias)];
                x = _b.AddNode("Conv", convInputs, [OnnxAttribute.Ints("kernel_shape", p, p), OnnxAttribute.Ints("strides", p, p)]);

                // Adding the [1,D,h,w] position grid before flattening is the same element-wise sum DINOv2 does on tokens.
                x = _b.AddNode("Add", [x, PatchPositionGrid(input, height, width)]);
                x = _b.AddNode("Reshape", [x, _b.Int64Constant(0, _d, -1)]);
                x = _b.AddNode("Transpose", [x], [OnnxAttribute.Ints("perm", 0, 2, 1)]);
            }

            x = PrependClsAndRegisters(input, x);
            for (var i = 0; i < config.Depth; i++)
            {
                x = Block(i, x);
            }

            using (_b.Scope("norm"))
            {
                x = LayerNorm(x, "norm");
            }

            _b.AddNode("Gather", [x, _b.Int64Scalar(0)], [OnnxAttribute.Int("axis", 1)], output: OutputName);
            _b.AddOutput(OutputName, TensorDataType.Float, [batch, _d]);
            if (options.IncludePatchTokens)
            {
                var first = 1 + config.NumRegisterTokens;
                _b.AddNode("Slice", [x, _b.Int64Constant(first), _b.Int64Constant(long.MaxValue), _b.Int64Constant(1)], output: PatchTokensName);
                OnnxDim patches = dynamicHw
                    ? OnnxDim.Symbolic("num_patches")
                    : OnnxDim.Fixed((long)(height / config.PatchSize) * (width / config.PatchSize));
                _b.AddOutput(PatchTokensName, TensorDataType.Float, [batch, patches, _d]);
            }

            var metadata = new Dictionary<string, string>
            {
                ["embed_dim"] = Invariant(config.EmbedDim),
                ["depth"] = Invariant(config.Depth),
                ["num_heads"] = Invariant(config.NumHeads),
                ["patch_size"] = Invariant(config.PatchSize),
                ["image_size"] = Invariant(config.ImageSize),
                ["num_register_tokens"] = Invariant(config.NumRegisterTokens),
                ["ffn_layer"] = config.Ffn == VitFfnKind.Mlp ? "mlp" : "swiglu",
                ["interpolate_offset"] = Invariant(config.InterpolateOffset),
            };
            var version = typeof(VitOnnxBuilder).Assembly.GetName().Version?.ToString() ?? "0";
            return _b.ToModel(options.Opset, ProducerName, version, metadata);
        }

        /// <summary>
        /// The patch part of pos_embed as a [1,D,h,w] grid for an h×w patch input, bicubically resized as DINOv2's
        /// <c>interpolate_pos_encoding</c> does: skipped when the patch count equals the trained grid's and the
        /// input is square; resized to the size (offset 0) or by scale (g + offset) / G, which PyTorch also uses
        /// in its coordinate transform (ONNX Resize "half_pixel" with scales reproduces it).
        /// </summary>
        private string PatchPositionGrid(string input, int height, int width)
        {
            var g = _grid;
            var pos = Get("pos_embed", 1, 1 + (long)g * g, _d);
            var grid = new float[_d * g * g];
            for (var t = 0; t < g * g; t++)
            {
                for (var c = 0; c < _d; c++)
                {
                    grid[c * g * g + t] = pos.Data[(1 + t) * _d + c];
                }
            }

            var gridName = _b.AddInitializer("pos_embed.patch_grid", grid, [1, _d, g, g]);
            var offset = config.InterpolateOffset;
            var p = config.PatchSize;
            AttributeProto[] bicubic =
            [
                OnnxAttribute.String("mode", "cubic"),
                OnnxAttribute.Float("cubic_coeff_a", -0.75f),
                OnnxAttribute.String("coordinate_transformation_mode", "half_pixel"),
                OnnxAttribute.Int("exclude_outside", 0),
            ];

            using var scope = _b.Scope("pos_embed");
            if (!options.DynamicHeightWidth)
            {
                int h0 = height / p, w0 = width / p;
                if (height == width && h0 * w0 == g * g)
                {
                    return gridName;
                }

                if (offset == 0)
                {
                    return _b.AddNode("Resize", [gridName, "", "", _b.Int64Constant(1, _d, h0, w0)], bicubic);
                }

                var sh = (float)((h0 + offset) / g);
                var sw = (float)((w0 + offset) / g);
                if ((int)(g * sh) != h0 || (int)(g * sw) != w0)
                {
                    throw new ArgumentException($"VitGraphConfig.InterpolateOffset {offset} does not resize a {g}x{g} grid to {h0}x{w0}.");
                }

                return _b.AddNode("Resize", [gridName, "", _b.FloatConstant(1, 1, sh, sw)], bicubic);
            }

            var hw = _b.AddNode("Slice", [InputShape(input), _b.Int64Constant(2), _b.Int64Constant(4)]);
            var hw0 = _b.AddNode("Div", [hw, _b.Int64Constant(p)]);
            if (offset == 0)
            {
                var sizes = _b.AddNode("Concat", [_b.Int64Constant(1, _d), hw0], [OnnxAttribute.Int("axis", 0)]);
                return _b.AddNode("Resize", [gridName, "", "", sizes], bicubic);
            }

            var hw0Float = _b.AddNode("Cast", [hw0], [OnnxAttribute.Int("to", (long)TensorDataType.Float)]);
            var shifted = _b.AddNode("Add", [hw0Float, _b.FloatScalar((float)offset)]);
            var scalesHw = _b.AddNode("Div", [shifted, _b.FloatScalar(g)]);
            var scales = _b.AddNode("Concat", [_b.FloatConstant(1, 1), scalesHw], [OnnxAttribute.Int("axis", 0)]);

            var square = _b.AddNode("Equal", [Element(hw, 0), Element(hw, 1)]);
            var patchCount = _b.AddNode("Mul", [Element(hw0, 0), Element(hw0, 1)]);
            var trainedCount = _b.AddNode("Equal", [patchCount, _b.Int64Scalar((long)g * g)]);
            var unchanged = _b.AddNode("And", [square, trainedCount]);
            var effective = _b.AddNode("Where", [unchanged, _b.FloatConstant(1, 1, 1, 1), scales]);
            return _b.AddNode("Resize", [gridName, "", effective], bicubic);
        }

        /// <summary>[cls + pos_embed[0], registers...] expanded over the batch and put before the patch tokens.</summary>
        private string PrependClsAndRegisters(string input, string patches)
        {
            var r = config.NumRegisterTokens;
            var cls = Get("cls_token", 1, 1, _d);
            var pos = Get("pos_embed", 1, 1 + (long)_grid * _grid, _d);
            var prefix = new float[(1 + r) * _d];
            for (var c = 0; c < _d; c++)
            {
                prefix[c] = cls.Data[c] + pos.Data[c];
            }

            if (r > 0)
            {
                Array.Copy(Get("register_tokens", 1, r, _d).Data, 0, prefix, _d, r * _d);
            }

            using var scope = _b.Scope("tokens");
            var prefixName = _b.AddInitializer("cls_and_register_tokens", prefix, [1, 1 + r, _d]);
            var batch = _b.AddNode("Slice", [InputShape(input), _b.Int64Constant(0), _b.Int64Constant(1)]);
            var shape = _b.AddNode("Concat", [batch, _b.Int64Constant(1 + r, _d)], [OnnxAttribute.Int("axis", 0)]);
            var expanded = _b.AddNode("Expand", [prefixName, shape]);
            return _b.AddNode("Concat", [expanded, patches], [OnnxAttribute.Int("axis", 1)]);
        }

        private string Block(int i, string x)
        {
            var key = $"blocks.{i}";
            using var scope = _b.Scope(key);
            string h;
            using (_b.Scope("norm1"))
            {
                h = LayerNorm(x, $"{key}.norm1");
            }

            using (_b.Scope("attn"))
            {
                h = Attention(h, $"{key}.attn");
            }

            h = LayerScale(h, $"{key}.ls1");
            x = _b.AddNode("Add", [x, h]);

            using (_b.Scope("norm2"))
            {
                h = LayerNorm(x, $"{key}.norm2");
            }

            using (_b.Scope("mlp"))
            {
                h = config.Ffn == VitFfnKind.Mlp ? Mlp(h, $"{key}.mlp") : SwiGlu(h, $"{key}.mlp");
            }

            h = LayerScale(h, $"{key}.ls2");
            return _b.AddNode("Add", [x, h]);
        }

        private string Attention(string x, string key)
        {
            var heads = config.NumHeads;
            var headDim = config.HeadDim;
            var qkv = Get($"{key}.qkv.weight", 3L * _d, _d);
            var qkvBias = GetOptional($"{key}.qkv.bias", 3L * _d);
            var q = Linear(x, qkv, qkvBias, 0, _d, $"{key}.q");
            var k = Linear(x, qkv, qkvBias, _d, _d, $"{key}.k");
            var v = Linear(x, qkv, qkvBias, 2 * _d, _d, $"{key}.v");

            var split = _b.Int64Constant(0, 0, heads, headDim);
            q = _b.AddNode("Transpose", [_b.AddNode("Reshape", [q, split])], [OnnxAttribute.Ints("perm", 0, 2, 1, 3)]);
            k = _b.AddNode("Transpose", [_b.AddNode("Reshape", [k, split])], [OnnxAttribute.Ints("perm", 0, 2, 3, 1)]);
            v = _b.AddNode("Transpose", [_b.AddNode("Reshape", [v, split])], [OnnxAttribute.Ints("perm", 0, 2, 1, 3)]);

            // DINOv2 scales q (not the logits) by head_dim^-0.5 before q·kᵀ.
            q = _b.AddNode("Mul", [q, _b.FloatScalar((float)Math.Pow(headDim, -0.5))]);
            var logits = _b.AddNode("MatMul", [q, k]);
            var attn = _b.AddNode("Softmax", [logits], [OnnxAttribute.Int("axis", -1)]);
            var o = _b.AddNode("MatMul", [attn, v]);
            o = _b.AddNode("Transpose", [o], [OnnxAttribute.Ints("perm", 0, 2, 1, 3)]);
            o = _b.AddNode("Reshape", [o, _b.Int64Constant(0, 0, _d)]);

            var proj = Get($"{key}.proj.weight", _d, _d);
            var projBias = GetOptional($"{key}.proj.bias", _d);
            return Linear(o, proj, projBias, 0, _d, $"{key}.proj");
        }

        private string Mlp(string x, string key)
        {
            var fc1 = Get($"{key}.fc1.weight", -1, _d);
            var hidden = fc1.Shape[0];
            var h = Linear(x, fc1, GetOptional($"{key}.fc1.bias", hidden), 0, (int)hidden, $"{key}.fc1");

            // Exact GELU, x·½·(1 + erf(x/√2)), in the form ONNX Runtime and TensorRT fuse into one Gelu kernel.
            var erf = _b.AddNode("Erf", [_b.AddNode("Div", [h, _b.FloatScalar(MathF.Sqrt(2f))])]);
            var gate = _b.AddNode("Add", [erf, _b.FloatScalar(1f)]);
            h = _b.AddNode("Mul", [_b.AddNode("Mul", [h, gate]), _b.FloatScalar(0.5f)]);

            var fc2 = Get($"{key}.fc2.weight", _d, hidden);
            return Linear(h, fc2, GetOptional($"{key}.fc2.bias", _d), 0, _d, $"{key}.fc2");
        }

        private string SwiGlu(string x, string key)
        {
            var w12 = Get($"{key}.w12.weight", -1, _d);
            if (w12.Shape[0] % 2 != 0)
            {
                throw new ArgumentException($"Weight '{key}.w12.weight' has {w12.Shape[0]} rows; SwiGLU needs an even count (x1 and x2 halves).");
            }

            var hidden = (int)(w12.Shape[0] / 2);
            var w12Bias = GetOptional($"{key}.w12.bias", 2L * hidden);
            var x1 = Linear(x, w12, w12Bias, 0, hidden, $"{key}.w1");
            var x2 = Linear(x, w12, w12Bias, hidden, hidden, $"{key}.w2");
            var silu = _b.AddNode("Mul", [x1, _b.AddNode("Sigmoid", [x1])]);
            var h = _b.AddNode("Mul", [silu, x2]);

            var w3 = Get($"{key}.w3.weight", _d, hidden);
            return Linear(h, w3, GetOptional($"{key}.w3.bias", _d), 0, _d, $"{key}.w3");
        }

        private string LayerScale(string x, string key)
        {
            var gamma = GetOptional($"{key}.gamma", _d);
            if (gamma is null)
            {
                return x;
            }

            using var scope = _b.Scope(key[(key.LastIndexOf('.') + 1)..]);
            return _b.AddNode("Mul", [x, Initializer($"{key}.gamma", gamma)]);
        }

        private string LayerNorm(string x, string key)
        {
            var weight = Initializer($"{key}.weight", Get($"{key}.weight", _d));
            var bias = Initializer($"{key}.bias", Get($"{key}.bias", _d));
            return _b.AddNode(
                "LayerNormalization",
                [x, weight, bias],
                [OnnxAttribute.Int("axis", -1), OnnxAttribute.Float("epsilon", (float)config.LayerNormEpsilon)]);
        }

        /// <summary>y = x·W[rows]ᵀ + b[rows] for the output rows [start, start+count) of a PyTorch Linear weight [out, in].</summary>
        private string Linear(string x, NamedWeight weight, NamedWeight? bias, int start, int count, string name)
        {
            var inFeatures = (int)weight.Shape[1];
            var weightT = _b.AddInitializer($"{name}.weight_t", [inFeatures, count], (weight.Data, start, count, inFeatures), static (transposed, s) =>
            {
                for (var r = 0; r < s.count; r++)
                {
                    var row = s.Data.AsSpan((int)((long)(s.start + r) * s.inFeatures), s.inFeatures);
                    for (var j = 0; j < s.inFeatures; j++)
                    {
                        transposed[j * s.count + r] = row[j];
                    }
                }
            });
            var y = _b.AddNode("MatMul", [x, weightT]);
            if (bias is null)
            {
                return y;
            }

            var b = _b.AddInitializer($"{name}.bias", bias.Data.AsSpan(start, count), [count]);
            return _b.AddNode("Add", [y, b]);
        }

        private string Initializer(string name, NamedWeight weight) =>
            _b.AddInitializer(name, weight.Data, weight.Shape);

        private string Element(string vector, long index) =>
            _b.AddNode("Gather", [vector, _b.Int64Scalar(index)], [OnnxAttribute.Int("axis", 0)]);

        private string InputShape(string input) =>
            _inputShape ??= _b.AddNode("Shape", [input]);

        private NamedWeight Get(string key, params long[] shape) =>
            GetOptional(key, shape) ?? throw new ArgumentException($"Weight '{key}' is missing.", "weights");

        /// <summary>A weight checked against <paramref name="shape"/>; -1 accepts any size in that axis.</summary>
        private NamedWeight? GetOptional(string key, params long[] shape)
        {
            if (!weights.TryGetValue(key, out var weight))
            {
                return null;
            }

            if (weight?.Data is null || weight.Shape is null)
            {
                throw new ArgumentException($"Weight '{key}' has no data or no shape.", "weights");
            }

            var matches = weight.Shape.Length == shape.Length
                && weight.Shape.Zip(shape).All(pair => pair.Second == -1 ? pair.First > 0 : pair.First == pair.Second);
            if (!matches)
            {
                var expected = string.Join(", ", shape.Select(s => s == -1 ? "*" : s.ToString(CultureInfo.InvariantCulture)));
                throw new ArgumentException($"Weight '{key}' has shape [{string.Join(", ", weight.Shape)}]; expected [{expected}].", "weights");
            }

            if (weight.ElementCount != weight.Data.Length)
            {
                throw new ArgumentException($"Weight '{key}' has {weight.Data.Length} values for shape [{string.Join(", ", weight.Shape)}].", "weights");
            }

            return weight;
        }

        private static string Invariant(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);
    }
}
