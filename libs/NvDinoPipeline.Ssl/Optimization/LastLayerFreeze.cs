using TorchSharp.Modules;

namespace NvDinoPipeline.Ssl.Optimization;

/// <summary>
/// Keeps the heads' prototype layer fixed during the first epochs (DINO's <c>cancel_gradients_last_layer</c>),
/// which stabilises the start of training. Dropping the gradient makes AdamW skip the parameter entirely
/// (no update, no weight decay). DINOv2 gets the same effect with a zero last-layer learning rate
/// (<see cref="Schedules.SslSchedules.LastLayerLr"/>); either is enough.
/// </summary>
public static class LastLayerFreeze
{
    /// <summary>Drops the gradients of every parameter named <c>*last_layer*</c> while <paramref name="epoch"/> &lt; <paramref name="freezeEpochs"/>. Returns how many were dropped.</summary>
    public static int CancelGradients(IEnumerable<(string name, Parameter parameter)> namedParameters, long epoch, long freezeEpochs)
    {
        ArgumentNullException.ThrowIfNull(namedParameters);
        if (epoch >= freezeEpochs)
            return 0;
        var cancelled = 0;
        foreach (var (name, parameter) in namedParameters)
        {
            if (!name.Contains("last_layer") || parameter.grad is null)
                continue;
            parameter.grad = null;
            cancelled++;
        }
        return cancelled;
    }
}
