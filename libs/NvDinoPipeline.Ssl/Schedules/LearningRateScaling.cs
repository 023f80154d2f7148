namespace NvDinoPipeline.Ssl.Schedules;

/// <summary>DINOv2's <c>sqrt_wrt_1024</c> learning-rate scaling rule (<c>utils/config.py</c>).</summary>
public static class LearningRateScaling
{
    /// <summary>base_lr · sqrt(batchSizePerGpu · gpus · nodes / 1024).</summary>
    public static double SqrtWrt1024(double baseLr, int batchSizePerGpu, int gpus = 1, int nodes = 1)
    {
        if (!(baseLr >= 0)) throw new ArgumentOutOfRangeException(nameof(baseLr), baseLr, "must not be negative");
        if (batchSizePerGpu <= 0) throw new ArgumentOutOfRangeException(nameof(batchSizePerGpu), batchSizePerGpu, "must be positive");
        if (gpus <= 0) throw new ArgumentOutOfRangeException(nameof(gpus), gpus, "must be positive");
        if (nodes <= 0) throw new ArgumentOutOfRangeException(nameof(nodes), nodes, "must be positive");
        return baseLr * Math.Sqrt((double)batchSizePerGpu * gpus * nodes / 1024.0);
    }
}
