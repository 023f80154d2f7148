using System.Diagnostics;
using System.Globalization;
using NvDinoPipeline.Onnx;

// Exports randomly initialised DINOv2 backbones at their real sizes and reports how long building, writing and
// loading take, how large the files are and how fast ONNX Runtime runs them on this machine's CPU.
// Then runs the export worker's own path (checkpoint file → ExportRunner → parity-checked model) on --worker-models.
//   dotnet run -c Release --project benchmarks/Export [-- --models vit_s,vit_b,vit_l,vit_g] [--runs 5] [--worker-models vit_s,vit_l|none]
var models = ArgValue("--models")?.Split(',') ?? ["vit_s", "vit_b", "vit_l"];
var workerModels = ArgValue("--worker-models") is { } w ? (w == "none" ? [] : w.Split(',')) : new[] { "vit_s", "vit_l" };
var runs = int.Parse(ArgValue("--runs") ?? "5", CultureInfo.InvariantCulture);
var folder = Path.Combine(Path.GetTempPath(), $"nvdino-export-bench-{Environment.ProcessId}");
Directory.CreateDirectory(folder);

Console.WriteLine($"ONNX export benchmark, {Environment.ProcessorCount} cores, 224x224 input, batch 1, dynamic batch and H/W graph");
Console.WriteLine("| backbone | params | ffn | build s | save s | model file | external data | peak RSS export GiB | session s | latency ms | peak RSS GiB | ORT warnings |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
try
{
    foreach (var name in models)
    {
        var (config, weights) = Backbones.Random(name);
        var parameters = weights.Values.Sum(w => (long)w.Data.Length);

        var clock = Stopwatch.StartNew();
        var model = VitOnnxBuilder.Build(config, weights, new VitExportOptions { DynamicHeightWidth = true });
        var build = clock.Elapsed.TotalSeconds;
        weights = null;
        GC.Collect();

        var path = Path.Combine(folder, $"{name}.onnx");
        clock.Restart();
        var saved = OnnxModelWriter.Save(model, path);
        var save = clock.Elapsed.TotalSeconds;
        model = null;
        GC.Collect();
        var exportPeak = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024);

        clock.Restart();
        using var runner = new OnnxModelRunner(path);
        var session = clock.Elapsed.TotalSeconds;
        var input = new float[3 * 224 * 224];
        var rng = new Random(1);
        for (var i = 0; i < input.Length; i++)
        {
            input[i] = rng.NextSingle() * 2 - 1;
        }

        runner.Run(input, [1, 3, 224, 224]);
        clock.Restart();
        for (var r = 0; r < runs; r++)
        {
            runner.Run(input, [1, 3, 224, 224]);
        }

        var latency = clock.Elapsed.TotalMilliseconds / runs;
        var peak = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {parameters / 1e6:F0}M | {config.Ffn} | {build:F1} | {save:F1} | {Size(saved.ModelBytes)} | {(saved.ExternalDataPath is null ? "-" : Size(saved.ExternalDataBytes))} | {exportPeak:F1} | {session:F1} | {latency:F0} | {peak:F1} | {runner.CreationWarnings?.Count.ToString(CultureInfo.InvariantCulture) ?? "n/a"} |"));
        File.Delete(path);
        if (saved.ExternalDataPath is not null)
        {
            File.Delete(saved.ExternalDataPath);
        }
    }
}
finally
{
    Directory.Delete(folder, recursive: true);
}

if (workerModels.Length > 0)
{
    WorkerPath.PrintHeader();
    foreach (var name in workerModels)
    {
        var workerFolder = Path.Combine(Path.GetTempPath(), $"nvdino-export-worker-bench-{Environment.ProcessId}-{name}");
        Directory.CreateDirectory(workerFolder);
        try
        {
            await WorkerPath.RunAsync(name, workerFolder);
        }
        finally
        {
            Directory.Delete(workerFolder, recursive: true);
            GC.Collect();
        }
    }
}

string? ArgValue(string flag)
{
    var i = Array.IndexOf(args, flag);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static string Size(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:F1} MB");
