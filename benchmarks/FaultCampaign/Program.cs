using System.Globalization;
using NvDinoPipeline.Deploy.Tests.Faults;

// The whole fault campaign on the real multi-process deployment (a private RabbitMQ, PostgreSQL and s3rver, every
// service its own process, small models): pipelines started at an interval while every fault kind is injected three
// times at random moments. Build the solution in Release first (the services run from their build output):
//   dotnet build -c Release && dotnet run -c Release --no-build --project benchmarks/FaultCampaign [-- pipelines [seed [seconds between starts]]]
var pipelines = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20;
var seed = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1;
// Starts spread over about ten minutes by default, so that the 30 faults fall while pipelines run.
var interval = TimeSpan.FromSeconds(args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 30);
var folder = Directory.CreateTempSubdirectory("nvdino-campaign-").FullName;
var log = Path.Combine(folder, "campaign.log");
var started = DateTime.UtcNow;
var loadBefore = File.ReadAllText("/proc/loadavg").Trim();
Console.WriteLine($"fault campaign: {pipelines} pipelines {interval.TotalSeconds:F0} s apart, seed {seed}, folder {folder}; load average at start {loadBefore}");

FaultCampaignReport report;
try
{
    report = await new FaultCampaign(new FaultCampaignOptions
    {
        Folder = folder,
        PortBase = 17700,
        Pipelines = pipelines,
        PipelineInterval = interval,
        FaultSpacing = TimeSpan.FromSeconds(10),
        S3Outage = TimeSpan.FromSeconds(30),
        Deadline = TimeSpan.FromMinutes(80),
        Seed = seed,
        Log = line =>
        {
            Console.WriteLine(line);
            File.AppendAllText(log, line + Environment.NewLine);
        },
    }).RunAsync();
}
catch (Exception exception)
{
    Console.WriteLine($"the campaign itself failed: {exception}");
    return 2;
}

var loadAfter = File.ReadAllText("/proc/loadavg").Trim();
Console.WriteLine();
Console.WriteLine($"## Fault campaign {started:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, {report.Elapsed.TotalMinutes:F1} min");
Console.WriteLine($"load average at start {loadBefore}; at end {loadAfter}");
Console.WriteLine();
Console.WriteLine("| figure | value | target |");
Console.WriteLine("|---|---|---|");
Console.WriteLine($"| pipelines started | {report.Started} | |");
Console.WriteLine($"| completed | {report.Completed} | all |");
Console.WriteLine($"| failed (with a reason) | {report.Failed.Count} | 0 |");
Console.WriteLine($"| unfinished at the deadline | {report.Unfinished.Count} | 0 |");
Console.WriteLine($"| stages completed twice | {report.StagesCompletedTwice.Count} | 0 |");
Console.WriteLine($"| artifacts whose sha256 does not match | {report.CorruptArtifacts.Count} of {report.ArtifactsChecked} | 0 |");
Console.WriteLine($"| faults injected | {report.Faults.Count} ({report.Faults.Count(f => f.MidJob)} kills mid-job) | each kind 3× |");
Console.WriteLine($"| longest stall after a fault ended | {report.LongestStallSeconds:F1} s | finite |");
if (report.OrchestratorMemory.Count > 0)
{
    var rss = report.OrchestratorMemory.Select(m => m.RssMiB).ToList();
    var quarter = Math.Max(1, rss.Count / 4);
    Console.WriteLine($"| orchestrator RSS: first quarter median / last quarter median / max | {Median(rss.Take(quarter))} / {Median(rss.TakeLast(quarter))} / {rss.Max():F0} MiB | flat |");
}
Console.WriteLine();
Console.WriteLine("| fault kind | injected | mid-job | pipelines touched | longest stall after (s) |");
Console.WriteLine("|---|---|---|---|---|");
foreach (var kind in report.Faults.GroupBy(f => f.Kind).OrderBy(g => g.Key))
{
    Console.WriteLine($"| {kind.Key} | {kind.Count()} | {kind.Count(f => f.MidJob)} | {kind.Sum(f => f.PipelinesTouched)} | {kind.Max(f => f.StallSeconds ?? 0):F1} |");
}
Console.WriteLine();
foreach (var fault in report.Faults)
{
    Console.WriteLine($"- {fault.Began:HH:mm:ss} {fault.Kind}: {fault.Detail}; {fault.PipelinesTouched} touched, stood still {fault.StallSeconds:F1} s");
}
foreach (var problem in report.Failed.Select(p => "failed: " + p)
    .Concat(report.Unfinished.Select(p => "unfinished: " + p))
    .Concat(report.StagesCompletedTwice.Select(p => "twice: " + p))
    .Concat(report.CorruptArtifacts.Select(p => "corrupt: " + p)))
{
    Console.WriteLine($"- {problem}");
}
Console.WriteLine($"logs of every process: {Path.Combine(folder, "logs")}");
var clean = report.Failed.Count == 0 && report.Unfinished.Count == 0 && report.StagesCompletedTwice.Count == 0 && report.CorruptArtifacts.Count == 0;
return clean ? 0 : 1;

static string Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count == 0 ? "-" : sorted[sorted.Count / 2].ToString("F0", CultureInfo.InvariantCulture);
}
