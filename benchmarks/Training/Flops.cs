using NvDinoPipeline.Benchmarks.Harness;
using NvDinoPipeline.Model;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Benchmarks.Training;

/// <summary>Model FLOPs of one SSL training image, counted analytically (a multiply-add is 2 FLOPs).</summary>
internal static class Flops
{
    /// <summary>Forward FLOPs of the backbone on one image of <paramref name="side"/> pixels.</summary>
    public static double BackboneForward(BackboneConfig c, int side) =>
        VitFlops.Forward(c.EmbedDim, c.Depth, c.PatchSize, side, c.FfnHiddenDim, c.FfnLayer == FfnLayer.SwiGlu, c.NumRegisterTokens, c.InChannels);

    /// <summary>Forward FLOPs of a DINO head on one token.</summary>
    public static double HeadForward(SslHeadOptions h, int inDim) =>
        h.NumLayers == 1
            ? 2.0 * inDim * h.BottleneckDim + 2.0 * h.BottleneckDim * h.NumPrototypes
            : 2.0 * (inDim * (double)h.HiddenDim + (h.NumLayers - 2) * (double)h.HiddenDim * h.HiddenDim + h.HiddenDim * (double)h.BottleneckDim)
              + 2.0 * h.BottleneckDim * h.NumPrototypes;

    /// <summary>
    /// One image's share of a training step: the student's forward and backward (3× forward) on 2 global and
    /// <paramref name="localCrops"/> local crops with both heads, the teacher's forward on the global crops.
    /// <paramref name="maskedPatches"/> is the mean number of masked patches per image (iBOT head tokens).
    /// </summary>
    public static double TrainingImage(SslTrainerOptions o, int globalSide, int localSide, int localCrops, double maskedPatches)
    {
        var head = HeadForward(o.Head, o.Backbone.EmbedDim);
        var student = 2 * BackboneForward(o.Backbone, globalSide) + localCrops * BackboneForward(o.Backbone, localSide)
                      + (2 + localCrops) * head + maskedPatches * head;
        var teacher = 2 * BackboneForward(o.Backbone, globalSide) + 2 * head + maskedPatches * head;
        return 3 * student + teacher;
    }
}
