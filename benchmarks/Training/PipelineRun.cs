using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NvDinoPipeline.Benchmarks.Harness;

namespace NvDinoPipeline.Benchmarks.Training;

/// <summary>
/// Fashion-MNIST through the product's own pipeline, as a user runs it: class folders of PNGs, then
/// <c>nvdino pipeline start --spec … --wait</c> on the embedded default (staging, training, export, engine, inference,
/// evaluation), then the figures the evaluation stage recorded. <c>validation</c> trains on the first 50 000 training
/// images and scores the last 10 000 (hyperparameters are chosen there); <c>test</c> trains on all 60 000 and scores
/// the 10 000 test images, once.
/// </summary>
internal static class PipelineRun
{
    /// <param name="limit">At most this many training images (and a fifth as many to score): a quick check of the run, not a figure.</param>
    public static async Task<int> RunAsync(string split, string spec, IReadOnlyList<string> sets, string work, int? limit)
    {
        if (split is not ("validation" or "test"))
        {
            Console.Error.WriteLine($"--split: '{split}' is neither validation nor test");
            return 2;
        }
        var root = Repository.Root;
        spec = Path.GetFullPath(spec, root);
        Console.WriteLine($"Machine: {Machine.Describe()}");
        var (train, test) = WriteImages(split, Path.Combine(work, limit is null ? split : $"{split}-{limit}"), limit);
        var home = Path.Combine(work, $"home-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        Console.WriteLine($"spec {Path.GetRelativePath(root, spec)}{string.Concat(sets.Select(s => " --set " + s))}; NVDINO_HOME {home}");

        var clock = Stopwatch.StartNew();
        string[] start = ["pipeline", "start", "--train", train, "--test", test, "--spec", spec, "--name", $"fashion-mnist-{split}", "--wait",
            .. sets.SelectMany(s => new[] { "--set", s })];
        var (exit, output) = await CliAsync(root, home, work, start, echo: true);
        var id = output.Select(line => Guid.TryParse(line.Trim(), out var g) ? g : (Guid?)null).FirstOrDefault(g => g is not null);
        if (id is null)
        {
            Console.Error.WriteLine($"the CLI printed no pipeline id (exit {exit})");
            return 1;
        }
        Console.WriteLine($"pipeline {id} ended with exit code {exit} after {clock.Elapsed.TotalMinutes:F1} min; load average {Machine.LoadAverageText()}");
        var (_, statusLines) = await CliAsync(root, home, work, ["pipeline", "status", id.Value.ToString(), "--json"], echo: false);
        using var status = JsonDocument.Parse(string.Join('\n', statusLines));
        var steps = status.RootElement.GetProperty("steps").EnumerateArray().ToList();
        Console.WriteLine();
        Console.WriteLine("| step | status | minutes | figures |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var step in steps)
        {
            var metrics = step.GetProperty("metrics").EnumerateObject().Take(6).Select(m => $"{m.Name} {m.Value.GetDouble():G4}");
            Console.WriteLine($"| {step.GetProperty("step").GetString()} | {step.GetProperty("status")} | {Minutes(step):F1} | {string.Join(", ", metrics)} |");
        }
        if (status.RootElement.TryGetProperty("trials", out var trials) && trials.GetArrayLength() > 0)
        {
            // An AutoML search: each trial's values and score on the images held out of its training (never the scored split).
            Console.WriteLine();
            Console.WriteLine("| trial | rung | status | epochs | held-out score | values |");
            Console.WriteLine("|---|---|---|---|---|---|");
            foreach (var trial in trials.EnumerateArray())
            {
                var values = string.Join(", ", trial.GetProperty("parameters").EnumerateObject().Select(p => $"{p.Name} {double.Parse(p.Value.GetString()!, CultureInfo.InvariantCulture):G3}"));
                var score = trial.GetProperty("score").ValueKind == JsonValueKind.Number ? trial.GetProperty("score").GetDouble().ToString("P2", CultureInfo.InvariantCulture) : "-";
                Console.WriteLine($"| {trial.GetProperty("trial").GetInt32()}{(trial.GetProperty("best").GetBoolean() ? " (won)" : "")} | {trial.GetProperty("rung").GetInt32()} | {trial.GetProperty("status")} | {trial.GetProperty("epochs")} | {score} | {values} |");
            }
        }
        var training = steps.Single(s => s.GetProperty("stage").GetString() == "Training");
        var evaluation = steps.SingleOrDefault(s => s.GetProperty("stage").GetString() == "Evaluation");
        if (evaluation.ValueKind == JsonValueKind.Undefined || !evaluation.GetProperty("artifacts").TryGetProperty("evaluation", out var report))
        {
            Console.Error.WriteLine("the pipeline recorded no evaluation");
            return 1;
        }
        using var scores = JsonDocument.Parse(await File.ReadAllTextAsync(new Uri(report.GetString()!).LocalPath));
        Console.WriteLine();
        Console.WriteLine($"Fashion-MNIST, split {split}: k-NN (k = 20, cosine, weighted T = 0.07) of the deployed model's embeddings, gallery the training images");
        Console.WriteLine("| features | dimension | k-NN top-1 | linear probe | per-dim std of l2-normalised features (min / median) |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var name in new[] { "raw_pixels", "raw_pixels_centred", "random_init", "deployed" })
        {
            if (!scores.RootElement.GetProperty("results").TryGetProperty(name, out var row))
                continue;
            var probe = row.TryGetProperty("linear_probe_top1", out var p) && p.ValueKind == JsonValueKind.Number ? p.GetDouble().ToString("P2", CultureInfo.InvariantCulture) : "-";
            var std = row.TryGetProperty("normalised_std_min", out var min) && min.ValueKind == JsonValueKind.Number
                ? $"{min.GetDouble():G3} / {row.GetProperty("normalised_std_median").GetDouble():G3}" : "-";
            Console.WriteLine($"| {name} | {row.GetProperty("dimension").GetInt32()} | {row.GetProperty("knn_top1").GetDouble():P2} | {probe} | {std} |");
        }
        Console.WriteLine($"training: {Minutes(training):F1} min wall clock ({training.GetProperty("message").GetString()}); {Machine.Describe()}");
        return exit;
    }

    private static double Minutes(JsonElement step) =>
        step.GetProperty("started_at").ValueKind == JsonValueKind.String && step.GetProperty("completed_at").ValueKind == JsonValueKind.String
            ? (step.GetProperty("completed_at").GetDateTime() - step.GetProperty("started_at").GetDateTime()).TotalMinutes
            : double.NaN;

    /// <summary>
    /// Class folders of PNGs, written once per split by scripts/datasets/fashion-mnist-folders.py and kept: the labels
    /// the evaluation stage reads are the folder names.
    /// </summary>
    private static (string Train, string Test) WriteImages(string split, string folder, int? limit)
    {
        var (train, test) = (Path.Combine(folder, "train"), Path.Combine(folder, "test"));
        var done = Path.Combine(folder, ".complete");
        if (File.Exists(done))
            return (train, test);
        var clock = Stopwatch.StartNew();
        var (trainImages, testImages) = limit is { } most ? (most, Math.Max(1, most / 5)) : (60_000, 10_000);
        var info = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false };
        foreach (var argument in new[] { Path.Combine(Repository.Root, "scripts", "datasets", "fashion-mnist-folders.py"), folder,
                     "--train", trainImages.ToString(CultureInfo.InvariantCulture), "--test", testImages.ToString(CultureInfo.InvariantCulture) })
            info.ArgumentList.Add(argument);
        if (split == "validation")
            info.ArgumentList.Add("--validation");
        using (var process = Process.Start(info)!)
        {
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"fashion-mnist-folders.py exited with {process.ExitCode}");
        }
        File.WriteAllText(done, "");
        Console.WriteLine($"wrote the {split} split's class folders under {folder} in {clock.Elapsed.TotalSeconds:F0} s");
        return (train, test);
    }

    /// <summary>Runs the product's CLI (Release, already built) on the embedded default with its own home.</summary>
    private static async Task<(int Exit, List<string> Output)> CliAsync(string root, string home, string readRoot, string[] arguments, bool echo)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "run", "--project", "services/NvDinoPipeline.Cli", "-c", "Release", "--no-build", "--" }.Concat(arguments))
            info.ArgumentList.Add(argument);
        info.Environment["NVDINO_HOME"] = home;
        info.Environment["ArtifactStore__AllowedReadRoots__0"] = readRoot;
        using var process = Process.Start(info)!;
        var output = new List<string>();
        var lastEcho = DateTime.MinValue;
        var stderr = process.StandardError.ReadToEndAsync();
        while (await process.StandardOutput.ReadLineAsync() is { } line)
        {
            output.Add(line);
            // --wait redraws its progress every second: one line a minute is enough here.
            if (echo && (DateTime.UtcNow - lastEcho > TimeSpan.FromMinutes(1) || output.Count < 3))
            {
                Console.WriteLine($"  {DateTime.UtcNow:HH:mm:ss} {line.Trim()}");
                lastEcho = DateTime.UtcNow;
            }
        }
        await process.WaitForExitAsync();
        var errors = await stderr;
        if (process.ExitCode != 0 && errors.Length > 0)
            Console.Error.WriteLine(errors);
        return (process.ExitCode, output);
    }
}
