using System.Text.Json;
using System.Text.Json.Serialization;

namespace NvDinoPipeline.Benchmarks.Harness;

/// <summary>
/// The reference GEMM measured on a quiet machine of a CPU model (<c>quiet-reference.json</c>, beside this file): a run
/// whose reference falls more than <see cref="SlowedBelow"/> under it was slowed by something else, and gives no verdict.
/// </summary>
public sealed record QuietReference(
    [property: JsonPropertyName("cpu")] string Cpu,
    [property: JsonPropertyName("cores")] int Cores,
    [property: JsonPropertyName("side")] int Side,
    [property: JsonPropertyName("gflops")] double Gflops,
    [property: JsonPropertyName("recorded")] string Recorded)
{
    public const double SlowedBelow = 0.8;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static string FileName => Path.Combine(AppContext.BaseDirectory, "quiet-reference.json");

    /// <summary>The recorded value for this CPU model, core count and GEMM side, or null when none was recorded.</summary>
    public static QuietReference? For(int side)
    {
        if (!File.Exists(FileName))
        {
            return null;
        }
        var all = JsonSerializer.Deserialize<List<QuietReference>>(File.ReadAllText(FileName), Json) ?? [];
        return all.FirstOrDefault(q => q.Cpu == Machine.CpuModel && q.Cores == Environment.ProcessorCount && q.Side == side);
    }

    /// <summary>The entry to add to <c>benchmarks/Harness/quiet-reference.json</c> for a value measured now.</summary>
    public static string Entry(int side, double gflops) =>
        JsonSerializer.Serialize(new QuietReference(Machine.CpuModel, Environment.ProcessorCount, side, Math.Round(gflops, 1),
            $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, load average {Machine.LoadAverageText()}"), Json);
}
