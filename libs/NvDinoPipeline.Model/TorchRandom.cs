using TorchSharp;

namespace NvDinoPipeline.Model;

/// <summary>
/// libtorch's default generator is one per process, and stochastic depth draws from it. A trainer seeds it and draws
/// from it only while holding this lock, so two trainers in one process (two jobs, or training next to distillation)
/// never take numbers from each other's sequence, and every step stays reproducible. The price is that their steps
/// take turns, which costs nothing on a CPU whose cores each step already uses.
/// </summary>
public static class TorchRandom
{
    private static readonly Lock Gate = new();

    [ThreadStatic]
    private static torch.Generator? threadGenerator;

    /// <summary>
    /// The generator this thread's stochastic depth draws from instead of libtorch's default one, or null. Data-parallel
    /// replicas run their forward passes concurrently on threads of their own; each draws from a generator seeded for its
    /// step and replica, so the numbers do not depend on how the threads interleave.
    /// </summary>
    public static torch.Generator? ThreadGenerator => threadGenerator;

    /// <summary>Takes the lock and seeds the CPU (and CUDA) generators; dispose the scope to release it.</summary>
    public static Lock.Scope Seeded(long seed)
    {
        var scope = Gate.EnterScope();
        // The returned handle wraps the default generator; freeing it here keeps it off the finalizer thread.
        torch.manual_seed(seed).Dispose();
        if (torch.cuda.is_available())
            torch.cuda.manual_seed_all(seed);
        return scope;
    }

    /// <summary>Makes <paramref name="generator"/> this thread's <see cref="ThreadGenerator"/> until the scope is disposed.</summary>
    public static ThreadGeneratorScope UseOnThisThread(torch.Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var previous = threadGenerator;
        threadGenerator = generator;
        return new ThreadGeneratorScope(previous);
    }

    /// <summary>Restores the thread's previous generator.</summary>
    public readonly struct ThreadGeneratorScope : IDisposable
    {
        private readonly torch.Generator? previous;

        internal ThreadGeneratorScope(torch.Generator? previous) => this.previous = previous;

        public void Dispose() => threadGenerator = previous;
    }
}
