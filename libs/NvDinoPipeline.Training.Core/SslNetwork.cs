using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Heads;
using TorchSharp;

namespace NvDinoPipeline.Training.Core;

/// <summary>
/// One side of the self-distillation (student or teacher): a backbone with separate DINO (class token) and iBOT
/// (patch token) heads. Parameter names are DINOv2's: <c>backbone.*</c>, <c>dino_head.*</c>, <c>ibot_head.*</c>.
/// </summary>
public sealed class SslNetwork : torch.nn.Module
{
    private readonly VisionTransformer backbone;
    private readonly DinoHead dino_head;
    private readonly DinoHead ibot_head;

    public SslNetwork(BackboneConfig backbone, SslHeadOptions head, string name = nameof(SslNetwork)) : base(name)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(head);
        this.backbone = new VisionTransformer(backbone);
        dino_head = new DinoHead(backbone.EmbedDim, head.NumPrototypes, head.NumLayers, head.HiddenDim, head.BottleneckDim);
        ibot_head = new DinoHead(backbone.EmbedDim, head.NumPrototypes, head.NumLayers, head.HiddenDim, head.BottleneckDim);
        RegisterComponents();
    }

    public VisionTransformer Backbone => backbone;

    public DinoHead DinoHead => dino_head;

    public DinoHead IbotHead => ibot_head;

    /// <summary>The three parts by name prefix, in the order DINOv2 builds its optimizer groups.</summary>
    public IEnumerable<(string Prefix, torch.nn.Module Module)> Parts()
    {
        yield return ("backbone", backbone);
        yield return ("dino_head", dino_head);
        yield return ("ibot_head", ibot_head);
    }
}
