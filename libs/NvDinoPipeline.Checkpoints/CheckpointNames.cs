using System.Globalization;

namespace NvDinoPipeline.Checkpoints;

/// <summary>
/// The names of the checkpoint files training and distillation jobs write into their <c>checkpoints/</c> folder, in the one
/// place that writes and reads them: <c>epoch_004.ckpt</c> after an epoch, <c>epoch_004_step_0001500.ckpt</c> mid-epoch.
/// </summary>
public static class CheckpointNames
{
    /// <summary>The folder of a job's artifact folder its checkpoints are uploaded to.</summary>
    public const string Folder = "checkpoints/";

    /// <summary>The file of a job's artifact folder that holds one line of figures per epoch (read by the API and dashboard).</summary>
    public const string MetricsFile = "metrics.jsonl";

    public static string FileName(int epoch, long? step = null) =>
        step is null
            ? string.Create(CultureInfo.InvariantCulture, $"epoch_{epoch:D3}.ckpt")
            : string.Create(CultureInfo.InvariantCulture, $"epoch_{epoch:D3}_step_{step:D7}.ckpt");

    /// <summary>The epoch of an end-of-epoch checkpoint's file name (<c>epoch_004.ckpt</c> → 4); null for any other name,
    /// mid-epoch checkpoints included.</summary>
    public static int? EpochOf(string fileName) =>
        Parse(fileName) is { Step: null } parsed ? parsed.Epoch : null;

    /// <summary>
    /// Completed epochs and, for a mid-epoch checkpoint, the step of a name <see cref="FileName"/> made
    /// (<c>epoch_004.ckpt</c> → (4, null); <c>epoch_004_step_0001500.ckpt</c> → (4, 1500)); null for any other name.
    /// </summary>
    public static (int Epoch, long? Step)? Parse(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        const string prefix = "epoch_", suffix = ".ckpt", stepMark = "_step_";
        if (!fileName.StartsWith(prefix, StringComparison.Ordinal) || !fileName.EndsWith(suffix, StringComparison.Ordinal)
            || fileName.Length <= prefix.Length + suffix.Length)
            return null;
        var body = fileName.AsSpan(prefix.Length, fileName.Length - prefix.Length - suffix.Length);
        var mark = body.IndexOf(stepMark, StringComparison.Ordinal);
        var epochDigits = mark < 0 ? body : body[..mark];
        if (!int.TryParse(epochDigits, NumberStyles.None, CultureInfo.InvariantCulture, out var epoch))
            return null;
        if (mark < 0)
            return (epoch, null);
        return long.TryParse(body[(mark + stepMark.Length)..], NumberStyles.None, CultureInfo.InvariantCulture, out var step)
            ? (epoch, step)
            : null;
    }
}
