using NvDinoPipeline.Model.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model;

/// <summary>
/// DINOv2 vision transformer backbone (Oquab et al. 2023), with optional register tokens (Darcet et al. 2023).
/// Parameter names equal DINOv2's state-dict keys, so checkpoints load by name.
/// </summary>
public sealed class VisionTransformer : nn.Module<Tensor, Tensor>
{
    /// <summary>Epsilon of every LayerNorm in the backbone (DINOv2 uses 1e-6, not PyTorch's 1e-5).</summary>
    public const double LayerNormEpsilon = 1e-6;

    private readonly PatchEmbed patch_embed;
    private readonly Parameter mask_token;
    private readonly Parameter cls_token;
    private readonly Parameter pos_embed;
    private readonly Parameter? register_tokens;
    private readonly ModuleList<Block> blocks;
    private readonly LayerNorm norm;

    public VisionTransformer(BackboneConfig config, string name = "VisionTransformer") : base(name)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;

        var dim = config.EmbedDim;
        patch_embed = new PatchEmbed(config.PatchSize, config.InChannels, dim);
        mask_token = nn.Parameter(zeros(1, dim));
        cls_token = nn.Parameter(zeros(1, 1, dim));
        pos_embed = nn.Parameter(zeros(1, config.NumPatches + 1, dim));
        register_tokens = config.NumRegisterTokens > 0 ? nn.Parameter(zeros(1, config.NumRegisterTokens, dim)) : null;
        blocks = nn.ModuleList(Enumerable.Range(0, config.Depth)
            .Select(i => new Block(dim, config.NumHeads, config.FfnLayer, config.FfnHiddenDim, config.LayerScaleInit, config.DropPathRateOfBlock(i)))
            .ToArray());
        norm = nn.LayerNorm(dim, eps: LayerNormEpsilon);
        RegisterComponents();
        InitializeWeights();
    }

    public BackboneConfig Config { get; }

    public int EmbedDim => Config.EmbedDim;

    public int PatchSize => Config.PatchSize;

    public int NumRegisterTokens => Config.NumRegisterTokens;

    /// <summary>Number of parameter elements of this instance, frozen or not.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>Patch tokens produced for an image of the given size; throws if a side is not a multiple of the patch.</summary>
    public long NumPatches(long height, long width)
    {
        var (gridHeight, gridWidth) = PatchGrid(height, width);
        return gridHeight * gridWidth;
    }

    /// <summary>Patch grid (rows, columns) for an image of the given size.</summary>
    public (long Height, long Width) PatchGrid(long height, long width)
    {
        if (height <= 0 || height % PatchSize != 0)
            throw new ArgumentException($"Image height {height} is not a positive multiple of the patch size {PatchSize}.", nameof(height));
        if (width <= 0 || width % PatchSize != 0)
            throw new ArgumentException($"Image width {width} is not a positive multiple of the patch size {PatchSize}.", nameof(width));
        return (height / PatchSize, width / PatchSize);
    }

    /// <summary>CLS embedding [B, D] of images [B, C, H, W].</summary>
    public override Tensor forward(Tensor images)
    {
        using var output = forward_features(images);
        return output.ClsToken.alias();
    }

    /// <summary>
    /// Normalised CLS, patch and register tokens of images [B, C, H, W] with H and W multiples of the patch size.
    /// <paramref name="masks"/> [B, N] (bool) replaces the marked patch embeddings by the learned mask token (iBOT).
    /// </summary>
    public BackboneOutput forward_features(Tensor images, Tensor? masks = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        using var scope = NewDisposeScope();
        var tokens = prepare_tokens_with_masks(images, masks);
        foreach (var block in blocks)
            tokens = block.forward(tokens);
        var normalized = norm.forward(tokens);

        var registers = NumRegisterTokens;
        var patchCount = normalized.shape[1] - 1 - registers;
        return new BackboneOutput(
            normalized.select(1, 0).MoveToOuterDisposeScope(),
            normalized.narrow(1, 1 + registers, patchCount).MoveToOuterDisposeScope(),
            normalized.narrow(1, 1, registers).MoveToOuterDisposeScope());
    }

    /// <summary>Token sequence [B, 1 + R + N, D] entering the first block: CLS, registers, then patches.</summary>
    public Tensor prepare_tokens_with_masks(Tensor images, Tensor? masks = null)
    {
        using var scope = NewDisposeScope();
        var (height, width) = (images.shape[^2], images.shape[^1]);
        var x = patch_embed.forward(images);
        var batch = x.shape[0];
        if (masks is not null)
        {
            if (masks.dim() != 2 || masks.shape[0] != batch || masks.shape[1] != x.shape[1])
                throw new ArgumentException(
                    $"Masks must be [B, N] = [{batch}, {x.shape[1]}] for images of {height}x{width}, got [{string.Join(", ", masks.shape)}].",
                    nameof(masks));
            var condition = masks.dtype == ScalarType.Bool ? masks : masks.to(ScalarType.Bool);
            x = where(condition.unsqueeze(-1), mask_token.to(x.dtype).unsqueeze(0), x);
        }

        x = cat([cls_token.expand(batch, -1, -1), x], dim: 1);
        x = x.Plus(interpolate_pos_encoding(x, height, width));

        if (register_tokens is not null)
        {
            x = cat([x.narrow(1, 0, 1), register_tokens.expand(batch, -1, -1), x.narrow(1, 1, x.shape[1] - 1)], dim: 1);
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Position embeddings for tokens <paramref name="x"/> [B, 1 + N, D] of an image height × width: the trained ones when
    /// the grid matches and the image is square, otherwise bicubically resampled from the trained grid.
    /// </summary>
    public Tensor interpolate_pos_encoding(Tensor x, long height, long width)
    {
        var patches = x.shape[1] - 1;
        var trained = pos_embed.shape[1] - 1;
        if (patches == trained && height == width)
            return pos_embed.alias();
        var (gridHeight, gridWidth) = PatchGrid(height, width);
        return PositionEmbedding.Interpolate(pos_embed, gridHeight, gridWidth, Config.InterpolateOffset, Config.InterpolateAntialias)
            .to(x.dtype);
    }

    // DINOv2's init_weights: trunc-normal(0.02) position embeddings, near-zero CLS and register tokens,
    // trunc-normal(0.02) linear weights with zero biases; the patch convolution keeps PyTorch's default init.
    private void InitializeWeights()
    {
        using var noGrad = no_grad();
        Initialization.TruncatedNormal(pos_embed, std: 0.02);
        nn.init.normal_(cls_token, std: 1e-6);
        if (register_tokens is not null)
            nn.init.normal_(register_tokens, std: 1e-6);
        foreach (var module in modules())
        {
            if (module is Linear linear)
            {
                Initialization.TruncatedNormal(linear.weight!, std: 0.02);
                if (linear.bias is not null)
                    nn.init.zeros_(linear.bias);
            }
        }
    }
}
