using System.Runtime.ExceptionServices;
using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Losses;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Core;

/// <summary>One replica's part of a step's batch: its images' crops (crop-major, as in <see cref="SslBatch"/>) and masks.</summary>
internal sealed record BatchShare(Tensor GlobalCrops, Tensor? LocalCrops, Tensor Masks, Tensor MaskIndices, Tensor MasksWeight, int Images)
{
    /// <summary>
    /// Splits <paramref name="batch"/> into <paramref name="replicas"/> shares of equal size: replica r takes images
    /// r·b … (r+1)·b − 1 of every crop, with their masks; mask indices and weights are recomputed for the share (the
    /// weights are per image, so they are the batch's). One share is the batch itself.
    /// </summary>
    /// <exception cref="ArgumentException">The images do not divide into <paramref name="replicas"/> equal shares.</exception>
    public static BatchShare[] Split(SslBatch batch, int replicas)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (replicas == 1)
            return [new BatchShare(batch.GlobalCrops, batch.LocalCrops, batch.Masks.Masks, batch.Masks.MaskIndices, batch.Masks.MasksWeight, batch.Images)];
        if (batch.Images % replicas != 0)
            throw new ArgumentException($"A batch of {batch.Images} images does not split into {replicas} equal replica shares.", nameof(batch));
        var images = batch.Images;
        var share = images / replicas;
        var localCrops = batch.LocalCrops is null ? 0 : (int)(batch.LocalCrops.shape[0] / images);
        var result = new BatchShare[replicas];
        for (var r = 0; r < replicas; r++)
        {
            var global = Rows(SslObjective.GlobalCrops, images, r * share, share);
            var masks = batch.Masks.Masks.index_select(0, global);
            result[r] = new BatchShare(
                batch.GlobalCrops.index_select(0, global),
                localCrops == 0 ? batch.LocalCrops : batch.LocalCrops!.index_select(0, Rows(localCrops, images, r * share, share)),
                masks,
                masks.flatten().nonzero().flatten(),
                IbotPatchLoss.MaskWeights(masks),
                share);
        }
        return result;
    }

    // Rows of images [first, first + count) in each of `crops` crop-major chunks of `images` rows.
    private static Tensor Rows(int crops, int images, int first, int count)
    {
        var rows = new long[crops * count];
        for (var c = 0; c < crops; c++)
        {
            for (var i = 0; i < count; i++)
                rows[c * count + i] = (long)c * images + first + i;
        }
        return torch.tensor(rows, ScalarType.Int64);
    }
}

/// <summary>
/// What one replica's thread can do besides its own work: exchange values with the other replicas (the all-reduce of
/// DINOv2's distributed losses, done by one thread for all).
/// </summary>
internal sealed class ReplicaContext
{
    private readonly ReplicaGroup group;

    internal ReplicaContext(ReplicaGroup group, int index, Device device)
    {
        this.group = group;
        Index = index;
        Device = device;
    }

    public int Index { get; }

    public Device Device { get; }

    /// <summary>
    /// Waits until every replica has handed in its <paramref name="value"/>, then returns this replica's element of what
    /// <paramref name="combine"/> made of all of them (run once, on one of the threads; every replica passes the same function).
    /// </summary>
    public TOut Exchange<TIn, TOut>(TIn value, Func<TIn[], TOut[]> combine) => group.Exchange(Index, value, combine);
}

/// <summary>
/// Data parallelism in one process, since TorchSharp binds no <c>torch.distributed</c>: each replica's part of a step
/// runs on a thread of its own (replica 0 on the caller's), with its own dispose scope, and meets the others at
/// <see cref="ReplicaContext.Exchange{TIn, TOut}"/>. Tensors a replica's thread makes live until every replica's work
/// is done. With several replicas each thread's stochastic depth draws from a generator seeded for the step and the
/// replica (<see cref="TorchRandom.ThreadGenerator"/>), so the run is reproducible however the threads interleave; one
/// replica draws from libtorch's default generator as a single-device trainer always has.
/// </summary>
internal sealed class ReplicaGroup
{
    private readonly Barrier barrier;
    private readonly CancellationTokenSource failed = new();
    private readonly object?[] inputs;
    private Func<object?[], object?[]>? pending;
    private object?[]? outputs;

    private ReplicaGroup(int count)
    {
        inputs = new object?[count];
        barrier = new Barrier(count, _ =>
        {
            // The last phase (every replica done) combines nothing.
            if (pending is { } combine)
                outputs = combine(inputs);
            pending = null;
        });
    }

    /// <summary>Runs <paramref name="work"/> for every device at once and returns each replica's result, in device order.</summary>
    /// <param name="replicaSeed">The seed of replica r's stochastic-depth generator (used with more than one replica).</param>
    public static T[] Run<T>(IReadOnlyList<Device> devices, Func<int, long> replicaSeed, Func<ReplicaContext, T> work)
    {
        ArgumentNullException.ThrowIfNull(devices);
        var group = new ReplicaGroup(devices.Count);
        var results = new T[devices.Count];
        var errors = new Exception?[devices.Count];
        void Body(int r)
        {
            try
            {
                using var generator = devices.Count > 1 ? new torch.Generator((ulong)replicaSeed(r)) : null;
                using var seeded = generator is null ? (IDisposable?)null : TorchRandom.UseOnThisThread(generator);
                using var scope = torch.NewDisposeScope();
                results[r] = work(new ReplicaContext(group, r, devices[r]));
                // No replica frees its tensors (some are exchanged) before every replica is done with them.
                group.barrier.SignalAndWait(group.failed.Token);
            }
            catch (Exception exception)
            {
                errors[r] = exception is BarrierPostPhaseException { InnerException: { } inner } ? inner : exception;
                group.failed.Cancel();
            }
        }

        var threads = Enumerable.Range(1, devices.Count - 1)
            .Select(r => new Thread(() => Body(r)) { IsBackground = true, Name = $"replica {r} ({devices[r]})" })
            .ToList();
        foreach (var thread in threads)
            thread.Start();
        Body(0);
        foreach (var thread in threads)
            thread.Join();
        group.barrier.Dispose();
        group.failed.Dispose();

        // The first failure is the cause; the others were cancelled by it.
        var cause = errors.FirstOrDefault(e => e is not null and not OperationCanceledException) ?? errors.FirstOrDefault(e => e is not null);
        if (cause is not null)
            ExceptionDispatchInfo.Capture(cause).Throw();
        return results;
    }

    internal TOut Exchange<TIn, TOut>(int index, TIn value, Func<TIn[], TOut[]> combine)
    {
        inputs[index] = value;
        if (index == 0)
            pending = all => combine(all.Cast<TIn>().ToArray()).Cast<object?>().ToArray();
        // Replica 0 sets the combination before it arrives, and the barrier runs it only once all have arrived.
        barrier.SignalAndWait(failed.Token);
        var result = (TOut)outputs![index]!;
        return result;
    }
}

/// <summary>
/// The parameters of the trained networks and of their copies on each replica: broadcast from the master before a step,
/// gradients averaged onto the master after it.
/// </summary>
internal sealed class ReplicaParameters
{
    private readonly List<(Parameter Master, Parameter[] Replicas)> parameters = [];

    /// <summary>Pairs every parameter of <paramref name="master"/> with the same-named one of each replica (the master itself may be one).</summary>
    public void Add(torch.nn.Module master, IReadOnlyList<torch.nn.Module> replicas)
    {
        var byName = replicas.Select(r => r.named_parameters().ToDictionary(p => p.name, p => p.parameter)).ToList();
        foreach (var (name, parameter) in master.named_parameters())
            parameters.Add((parameter, byName.Select(d => d[name]).ToArray()));
    }

    /// <summary>Copies every master parameter to its replicas that are not the master itself (any device, any dtype).</summary>
    public void Broadcast()
    {
        using var noGrad = torch.no_grad();
        foreach (var (master, replicas) in parameters)
        {
            foreach (var replica in replicas)
            {
                if (!ReferenceEquals(replica, master))
                    replica.copy_(master);
            }
        }
    }

    /// <summary>Clears every replica's gradients (set-to-none).</summary>
    public void ClearGradients()
    {
        foreach (var (master, replicas) in parameters)
        {
            master.grad = null;
            foreach (var replica in replicas)
                replica.grad = null;
        }
    }

    /// <summary>
    /// The master's gradient ← the mean of the replicas' gradients, in float32 on the master's device: each replica's
    /// loss is a mean over its share, so the mean over equal shares is the gradient of the loss over the whole batch.
    /// A replica without a gradient for a parameter (no masked patches for the iBOT head) adds zero; none leaves it unset.
    /// </summary>
    public void AverageGradientsOntoMaster()
    {
        foreach (var (master, replicas) in parameters)
        {
            if (replicas.Length == 1 && ReferenceEquals(replicas[0], master))
                continue;
            Tensor? sum = null;
            foreach (var replica in replicas)
            {
                if (replica.grad is not { } grad)
                    continue;
                var onMaster = grad.to(ScalarType.Float32, master.device);
                sum = sum is null ? onMaster : sum.Plus(onMaster);
            }
            if (sum is not null && replicas.Length > 1)
                sum = sum.DividedBy((long)replicas.Length);
            master.grad = sum;
        }
    }
}

/// <summary>What one replica's part of a step reports: its loss, its figures, or why its loss is not finite.</summary>
internal sealed record ReplicaFigures(double Total, Dictionary<string, double> Metrics, string? Divergence)
{
    /// <summary>
    /// The step's figures: each the mean over the replicas (equal shares, so the figure of the whole batch for the
    /// per-sample means; KoLeo is the mean of the replicas' own KoLeo terms), a value they all share as it is.
    /// </summary>
    public static Dictionary<string, double> Mean(IReadOnlyList<ReplicaFigures> replicas)
    {
        ArgumentNullException.ThrowIfNull(replicas);
        if (replicas.Count == 1)
            return replicas[0].Metrics;
        var result = new Dictionary<string, double>();
        foreach (var key in replicas[0].Metrics.Keys)
        {
            var values = replicas.Select(r => r.Metrics[key]).ToArray();
            result[key] = values.All(v => v.Equals(values[0])) ? values[0] : values.Average();
        }
        return result;
    }
}
