using System.Globalization;

namespace NvDinoPipeline.Benchmarks.Harness;

/// <summary>What the figures were taken on: the CPU (read, never assumed), its matrix extensions and the load average.</summary>
public static class Machine
{
    public static string CpuModel { get; } = CpuInfo("model name") ?? "unknown CPU";

    /// <summary>The CPU's bf16 and int8 matrix extensions as <c>/proc/cpuinfo</c> names them.</summary>
    public static IReadOnlyList<string> MatrixFeatures { get; } =
        (CpuInfo("flags") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Where(f => f is "avx512_bf16" or "avx512_vnni" or "avx_vnni" or "amx_bf16" or "amx_int8" or "avx512f")
            .Order().ToList();

    /// <summary>The 1-, 5- and 15-minute load averages.</summary>
    public static (double One, double Five, double Fifteen) LoadAverage()
    {
        var fields = File.ReadAllText("/proc/loadavg").Split(' ');
        return (Parse(fields[0]), Parse(fields[1]), Parse(fields[2]));
    }

    public static string LoadAverageText()
    {
        var (one, five, fifteen) = LoadAverage();
        return string.Create(CultureInfo.InvariantCulture, $"{one:F2} {five:F2} {fifteen:F2}");
    }

    public static string Describe() =>
        $"{CpuModel}, {Environment.ProcessorCount} cores ({string.Join(", ", MatrixFeatures)}), load average {LoadAverageText()}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC";

    private static double Parse(string text) => double.Parse(text, CultureInfo.InvariantCulture);

    private static string? CpuInfo(string key) =>
        File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").Where(l => l.StartsWith(key, StringComparison.Ordinal)).Select(l => l[(l.IndexOf(':') + 1)..].Trim()).FirstOrDefault()
            : null;
}
