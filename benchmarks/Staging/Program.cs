using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Staging;
using NvDinoPipeline.Storage;
using StbImageWriteSharp;

// Generates a tar.gz of small images (70% JPEG, 20% PNG, 10% BMP), then times `tar -xzf` of it against a full
// staging (gunzip, untar, SHA-256, header check, decode, scale, shards, manifest, statistics) on the same machine.
//   dotnet run -c Release --project benchmarks/Staging [-- --images 10000] [--scale 4] [--large 500] [--runs 5]
var imageCount = int.Parse(ArgValue("--images") ?? "10000", CultureInfo.InvariantCulture);
var largeCount = int.Parse(ArgValue("--large") ?? "500", CultureInfo.InvariantCulture);
var runs = int.Parse(ArgValue("--runs") ?? "5", CultureInfo.InvariantCulture);
var folder = Path.Combine(Path.GetTempPath(), $"nvdino-staging-bench-{Environment.ProcessId}");
Directory.CreateDirectory(folder);

var jpegDecoder = System.Runtime.InteropServices.NativeLibrary.TryLoad("libturbojpeg.so.0", out _) ? "libjpeg-turbo" : "StbImageSharp (libturbojpeg0 not installed)";
Console.WriteLine($"Staging benchmark: {Environment.ProcessorCount} cores, .NET {Environment.Version}, JPEG decoder {jpegDecoder}, best and median of {runs} runs (tar and staging in turns), page cache warm");
try
{
    var rows = new List<string>();
    // The same small images, four times as many: peak memory must not grow with the archive.
    var scale = int.Parse(ArgValue("--scale") ?? "4", CultureInfo.InvariantCulture);
    foreach (var (name, count, minSide, maxSide) in new[]
             {
                 ("small", imageCount, 64, 160), ($"small x{scale}", scale > 1 ? imageCount * scale : 0, 64, 160), ("large", largeCount, 480, 1024),
             })
    {
        if (count <= 0)
        {
            continue;
        }
        var archive = Generate(Path.Combine(folder, $"{name.Replace(' ', '-')}.tar.gz"), count, minSide, maxSide, seed: 1);
        Console.WriteLine($"{name}: {count} images of {minSide}-{maxSide} px, archive {archive.Bytes / 1e6:0.0} MB packed, {archive.Unpacked / 1e6:0.0} MB unpacked");

        // A worker stages one dataset after another: time it warm, after one untimed run of the same archive.
        await StageAsync(archive.Path);
        // tar and staging take turns, so that load from elsewhere on the machine falls on both alike.
        // Hand the heap the generator and the warm-up run left back to the system, so the peak is staging's own.
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        ResetPeakRss();
        var tarTimes = new List<double>();
        var results = new List<(double Seconds, DatasetStaged Staged)>();
        double tarCpu = 0, stageCpu = 0;
        for (var run = 0; run < runs; run++)
        {
            var childCpu = ChildrenCpuSeconds();
            tarTimes.Add(TarExtract(archive.Path, Path.Combine(folder, "tar-out")));
            tarCpu += (ChildrenCpuSeconds() - childCpu) / runs;
            var ownCpu = Process.GetCurrentProcess().TotalProcessorTime;
            results.Add(await StageAsync(archive.Path));
            stageCpu += (Process.GetCurrentProcess().TotalProcessorTime - ownCpu).TotalSeconds / runs;
        }
        tarTimes.Sort();
        var peak = PeakRssMiB();
        var stageTimes = results.Select(r => r.Seconds).Order().ToList();
        var staged = results[0].Staged;
        var best = stageTimes[0];
        rows.Add(string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {count} | {archive.Bytes / 1e6:0.0} | {tarTimes[0]:0.000} / {tarTimes[runs / 2]:0.000} | {best:0.000} / {stageTimes[runs / 2]:0.000} | " +
            $"{best / tarTimes[0]:0.00}x | {tarCpu:0.00} / {stageCpu:0.00} | {staged.ImageCount / best:0} | {archive.Bytes / 1e6 / best:0.0} | {archive.Unpacked / 1e6 / best:0.0} | {peak:0} |"));
        if (staged.ImageCount != count)
        {
            Console.WriteLine($"  warning: staged {staged.ImageCount} of {count} images ({staged.SkippedCount} skipped, {staged.DuplicateCount} duplicates)");
        }
    }

    Console.WriteLine();
    Console.WriteLine("| set | images | archive MB | tar -xzf s (best / median) | staging s (best / median) | staging / tar | CPU s per run (tar / staging) | images/s | packed MB/s | unpacked MB/s | peak RSS MiB |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
    rows.ForEach(Console.WriteLine);
}
finally
{
    Directory.Delete(folder, recursive: true);
}

async Task<(double Seconds, DatasetStaged Staged)> StageAsync(string archive)
{
    var root = Path.Combine(folder, "store");
    var scratch = Path.Combine(folder, "scratch");
    if (Directory.Exists(root))
    {
        Directory.Delete(root, recursive: true);
    }
    Directory.CreateDirectory(root);
    Directory.CreateDirectory(scratch);
    using var store = new ArtifactStore(Options.Create(new ArtifactStoreOptions { Root = new Uri(root + "/").AbsoluteUri, AllowedReadRoots = [folder] }));
    var runner = new DatasetStagingRunner(store, Options.Create(new StagingOptions()), NullLogger<DatasetStagingRunner>.Instance);
    var command = new StageDataset
    {
        PipelineId = Guid.NewGuid(),
        JobId = Guid.NewGuid(),
        Spec = "{}",
        OutputUri = store.JobFolder(Guid.NewGuid(), Guid.NewGuid()),
        SourceUri = new Uri(new Uri(archive).AbsoluteUri),
        Role = DatasetRole.Train,
        Force = true,
    };
    var context = new StageContext(command, PipelineStage.Staging, ResolvedSpec.FromJson("{}"), command.OutputUri, scratch,
        NullLogger.Instance, (_, _, _) => Task.CompletedTask);
    var clock = Stopwatch.StartNew();
    var result = await runner.RunAsync(command, context, CancellationToken.None);
    return (clock.Elapsed.TotalSeconds, result.Completed);
}

static double TarExtract(string archive, string output)
{
    if (Directory.Exists(output))
    {
        Directory.Delete(output, recursive: true);
    }
    Directory.CreateDirectory(output);
    var clock = Stopwatch.StartNew();
    using var tar = Process.Start(new ProcessStartInfo("tar", ["-xzf", archive, "-C", output]) { RedirectStandardError = true })!;
    tar.WaitForExit();
    var seconds = clock.Elapsed.TotalSeconds;
    if (tar.ExitCode != 0)
    {
        throw new InvalidOperationException($"tar -xzf failed: {tar.StandardError.ReadToEnd()}");
    }
    return seconds;
}

static (string Path, long Bytes, long Unpacked) Generate(string path, int count, int minSide, int maxSide, int seed)
{
    // Encoded a thousand at a time, so the generator never holds a large archive's images at once.
    long unpacked = 0;
    using (var file = File.Create(path))
    using (var gzip = new GZipStream(file, CompressionLevel.Optimal))
    using (var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true))
    {
        for (var first = 0; first < count; first += 1000)
        {
            var files = new (string Name, byte[] Data)[Math.Min(1000, count - first)];
            Parallel.For(0, files.Length, n =>
            {
                var i = first + n;
                var random = new Random(seed * 1_000_003 + i);
                var width = random.Next(minSide, maxSide + 1);
                var height = random.Next(minSide, maxSide + 1);
                var rgb = Picture(width, height, random);
                using var encoded = new MemoryStream();
                var writer = new ImageWriter();
                var kind = i % 10;
                var folderName = $"class{i % 20:D2}";
                if (kind < 7)
                {
                    writer.WriteJpg(rgb, width, height, ColorComponents.RedGreenBlue, encoded, 90);
                    files[n] = ($"{folderName}/{i:D6}.jpg", encoded.ToArray());
                }
                else if (kind < 9)
                {
                    writer.WritePng(rgb, width, height, ColorComponents.RedGreenBlue, encoded);
                    files[n] = ($"{folderName}/{i:D6}.png", encoded.ToArray());
                }
                else
                {
                    writer.WriteBmp(rgb, width, height, ColorComponents.RedGreenBlue, encoded);
                    files[n] = ($"{folderName}/{i:D6}.bmp", encoded.ToArray());
                }
            });
            foreach (var (name, data) in files)
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
                unpacked += data.Length;
            }
        }
    }
    return (path, new FileInfo(path).Length, unpacked);
}

// Smooth gradients, a few flat shapes and mild noise: compresses like a photograph rather than like noise or a flat fill.
static byte[] Picture(int width, int height, Random random)
{
    var rgb = new byte[width * height * 3];
    var (r0, g0, b0) = (random.Next(256), random.Next(256), random.Next(256));
    var circles = Enumerable.Range(0, 3).Select(_ => (X: random.Next(width), Y: random.Next(height), R: random.Next(4, Math.Max(5, width / 3)),
        Colour: (byte)random.Next(256))).ToArray();
    for (var y = 0; y < height; y++)
    {
        for (var x = 0; x < width; x++)
        {
            var i = (y * width + x) * 3;
            var inside = circles.FirstOrDefault(c => (x - c.X) * (x - c.X) + (y - c.Y) * (y - c.Y) < c.R * c.R);
            var noise = random.Next(-6, 7);
            rgb[i] = (byte)Math.Clamp((inside.R > 0 ? inside.Colour : r0 * x / width) + noise, 0, 255);
            rgb[i + 1] = (byte)Math.Clamp(g0 * y / height + noise, 0, 255);
            rgb[i + 2] = (byte)Math.Clamp((b0 + x + y) % 256 + noise, 0, 255);
        }
    }
    return rgb;
}

// User and system time of waited-for child processes (tar and the gzip it runs), fields 16 and 17 of /proc/self/stat.
static double ChildrenCpuSeconds()
{
    var stat = File.ReadAllText("/proc/self/stat");
    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    return (long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture)) / 100.0;
}

// Writing 5 to clear_refs resets the kernel's peak resident set size (VmHWM) of this process.
static void ResetPeakRss()
{
    try
    {
        File.WriteAllText("/proc/self/clear_refs", "5");
    }
    catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
    {
        Console.WriteLine($"  (could not reset the peak RSS: {exception.Message}; the figure includes image generation)");
    }
}

static double PeakRssMiB()
{
    var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
    return line is null
        ? Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024)
        : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
}

string? ArgValue(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}
