namespace NvDinoPipeline.Training.Core;

/// <summary>What a derived random stream is used for; each purpose gets independent numbers.</summary>
public enum SeedPurpose
{
    Initialization = 1,
    DataOrder = 2,
    Crops = 3,
    Masks = 4,
    Step = 5,
    ReplicaStep = 6,
}

/// <summary>
/// Every random number of a run derives from the run's seed and a position (epoch, image, step), never from a
/// generator that has advanced: a run resumed from a checkpoint draws exactly what the uninterrupted run would
/// have drawn, so the checkpoint only needs the seed and the step, not a generator's internal state.
/// </summary>
public static class TrainingSeeds
{
    /// <summary>A seed for <see cref="System.Random"/> (non-negative 31 bits) at a position of the run.</summary>
    public static int ForRandom(long seed, SeedPurpose purpose, long a, long b = 0) =>
        (int)(Mix(seed, purpose, a, b) & int.MaxValue);

    /// <summary>A seed for torch's generator (drop-path draws) at a training step.</summary>
    public static long ForTorch(long seed, long step) =>
        (long)(Mix(seed, SeedPurpose.Step, step, 0) >> 1);

    /// <summary>A seed for the generator of data-parallel replica <paramref name="replica"/>'s stochastic depth at a training step.</summary>
    public static long ForReplica(long seed, long step, int replica) =>
        (long)(Mix(seed, SeedPurpose.ReplicaStep, step, replica) >> 1);

    /// <summary>A seed chosen from the clock, for runs whose spec leaves the seed unfixed (train.seed = -1).</summary>
    public static long Fresh() => System.Random.Shared.NextInt64(0, int.MaxValue);

    // SplitMix64 finaliser over each input in turn (Steele et al. 2014): consecutive positions give unrelated seeds.
    private static ulong Mix(long seed, SeedPurpose purpose, long a, long b)
    {
        var state = SplitMix((ulong)seed);
        state = SplitMix(state ^ (ulong)purpose);
        state = SplitMix(state ^ (ulong)a);
        return SplitMix(state ^ (ulong)b);
    }

    private static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
