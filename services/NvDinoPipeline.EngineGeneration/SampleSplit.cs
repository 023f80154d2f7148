namespace NvDinoPipeline.EngineGeneration;

/// <summary>
/// Which images calibrate and which verify. The verification images are drawn first and kept out of calibration
/// whenever the dataset has images to spare, so INT8 fidelity is measured on images calibration never saw.
/// </summary>
public sealed record SampleSplit(IReadOnlyList<int> Calibration, IReadOnlyList<int> Verification, bool HeldOut)
{
    /// <param name="count">Images available.</param>
    /// <param name="calibrationImages">Images wanted for calibration; 0 when nothing is calibrated.</param>
    /// <param name="verificationImages">Images wanted for verification.</param>
    /// <param name="seed">Fixes the draw, so the same dataset calibrates the same way every time.</param>
    public static SampleSplit Create(int count, int calibrationImages, int verificationImages, int seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(calibrationImages);
        ArgumentOutOfRangeException.ThrowIfLessThan(verificationImages, 1);
        var order = Enumerable.Range(0, count).ToArray();
        new Random(seed).Shuffle(order);
        if (calibrationImages == 0)
        {
            return new SampleSplit([], order[..Math.Min(count, verificationImages)], HeldOut: true);
        }

        if (count == 1)
        {
            return new SampleSplit(order, order, HeldOut: false);
        }

        // Short of images: at most a fifth of them (at least one) verify, the rest calibrate.
        var verify = count >= calibrationImages + verificationImages
            ? verificationImages
            : Math.Clamp(Math.Min(verificationImages, count / 5), 1, count - 1);
        var calibrate = Math.Min(calibrationImages, count - verify);
        return new SampleSplit(order[verify..(verify + calibrate)], order[..verify], HeldOut: true);
    }
}
