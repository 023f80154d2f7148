using static TorchSharp.torch;

namespace NvDinoPipeline.Model;

/// <summary>Bicubic resampling of a square grid of patch position embeddings, as DINOv2's interpolate_pos_encoding.</summary>
public static class PositionEmbedding
{
    /// <summary>
    /// Resamples <paramref name="posEmbed"/> [1, 1 + M·M, D] (class position first) to a gridHeight × gridWidth grid.
    /// With a positive <paramref name="offset"/> the scale factor is (grid + offset) / M, which DINOv2 keeps for
    /// backward compatibility because the resampling uses the scale factor, not only the output size.
    /// </summary>
    public static Tensor Interpolate(Tensor posEmbed, long gridHeight, long gridWidth, double offset, bool antialias)
    {
        ArgumentNullException.ThrowIfNull(posEmbed);
        if (posEmbed.dim() != 3 || posEmbed.shape[0] != 1)
            throw new ArgumentException($"Position embeddings must be [1, 1+N, D], got [{string.Join(", ", posEmbed.shape)}].", nameof(posEmbed));
        var patches = posEmbed.shape[1] - 1;
        var side = (long)Math.Sqrt(patches);
        while (side * side > patches) side--;
        while ((side + 1) * (side + 1) <= patches) side++;
        if (side * side != patches)
            throw new ArgumentException($"Position embeddings cover {patches} patches, which is not a square grid.", nameof(posEmbed));
        if (gridHeight <= 0 || gridWidth <= 0)
            throw new ArgumentException($"Target grid must be positive, got {gridHeight}x{gridWidth}.");

        using var scope = NewDisposeScope();
        var dim = posEmbed.shape[2];
        var asFloat = posEmbed.to(ScalarType.Float32);
        var classPosition = asFloat.narrow(1, 0, 1);
        var grid = asFloat.narrow(1, 1, patches).reshape(1, side, side, dim).permute(0, 3, 1, 2);
        Tensor resampled;
        if (offset > 0)
        {
            var scale = new[] { (gridHeight + offset) / side, (gridWidth + offset) / side };
            resampled = nn.functional.interpolate(grid, scale_factor: scale, mode: InterpolationMode.Bicubic, align_corners: false, antialias: antialias);
        }
        else
        {
            resampled = nn.functional.interpolate(grid, size: [gridHeight, gridWidth], mode: InterpolationMode.Bicubic, align_corners: false, antialias: antialias);
        }
        if (resampled.shape[2] != gridHeight || resampled.shape[3] != gridWidth)
            throw new InvalidOperationException(
                $"Interpolating position embeddings from {side}x{side} produced {resampled.shape[2]}x{resampled.shape[3]}, expected {gridHeight}x{gridWidth}.");
        var patchPositions = resampled.permute(0, 2, 3, 1).reshape(1, gridHeight * gridWidth, dim);
        return cat([classPosition, patchPositions], dim: 1).to(posEmbed.dtype).MoveToOuterDisposeScope();
    }
}
