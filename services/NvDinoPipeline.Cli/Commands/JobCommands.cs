using System.CommandLine;
using System.Text;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Orchestrator;
using NvDinoPipeline.Orchestrator.Api;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Cli.Commands;

/// <summary>
/// Jobs, as TAO's users know them: one action after a parent job (<c>job run export --parent &lt;job&gt;</c>), a job's
/// status, its log lines, its artifacts.
/// </summary>
public static class JobCommands
{
    public static Command Build(Option<string?> config)
    {
        var job = new Command("job", "Run one action after a finished job; show a job, its log lines and its artifacts.");
        job.Subcommands.Add(Run(config));
        job.Subcommands.Add(Status(config));
        job.Subcommands.Add(Logs(config));
        job.Subcommands.Add(Artifacts(config));
        job.Subcommands.Add(Download(config));
        return job;
    }

    private static Command Run(Option<string?> config)
    {
        var action = new Argument<string>("action") { Description = $"One of {string.Join(", ", SingleActions.Names)}." };
        action.AcceptOnlyFromAmong([.. SingleActions.Names]);
        var parent = new Option<Guid>("--parent") { Description = "The finished job whose artifacts the action starts from (TAO's parent_job_id).", Required = true };
        var test = new Option<string?>("--test") { Description = "Test images to stage, for inference and evaluate; default: the parent pipeline's." };
        var sets = new Option<string[]>("--set") { Description = "Dotted-key override of the parent's spec, e.g. export.opset_version=17 (repeatable)." };
        var overrides = new Option<string?>("--spec-overrides") { Description = "A JSON object of dotted keys and values, inline or a file; before --set." };
        var name = new Option<string?>("--name") { Description = "A name to show in status and list." };
        var wait = new Option<bool>("--wait") { Description = "Wait for the action to finish, showing progress." };
        var command = new Command("run", "Run one action on its own after a finished job; prints the id of the pipeline that runs it.")
        {
            action, parent, test, sets, overrides, name, wait,
        };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            // Only the keys given: the orchestrator merges them over the parent's spec, not over the templates.
            var spec = new StringBuilder();
            foreach (var assignment in (string[])[.. SpecOverrides.Read(result.GetValue(overrides)), .. result.GetValue(sets) ?? []])
            {
                var equals = assignment.IndexOf('=');
                if (equals <= 0)
                {
                    throw new CliException($"--set: '{assignment}' is not key=value.");
                }
                spec.Append(assignment[..equals].Trim()).Append(": ").AppendLine(assignment[(equals + 1)..].Trim());
            }
            var start = new StartPipeline
            {
                PipelineId = NewId.NextGuid(),
                TestDataUri = result.GetValue(test) is { } testData ? DataUris.Parse(testData, "--test") : null,
                Spec = spec.Length == 0 ? "{}" : spec.ToString(),
                Name = result.GetValue(name),
                Action = result.GetValue(action),
                ParentJobId = result.GetValue(parent),
                RequestedAt = DateTimeOffset.UtcNow,
            };
            var configFile = result.GetValue(config);
            await using var services = CliServices.Create(configFile);
            if (await services.Provider.GetRequiredService<PipelineStore>().ReadJobAsync(start.ParentJobId!.Value, cancellationToken) is null)
            {
                throw new CliException($"--parent: no job {start.ParentJobId} in the state database.");
            }
            return await Cli.SendAsync(services, configFile, start, start.PipelineId, result.GetValue(wait), () => Console.WriteLine(start.PipelineId), cancellationToken);
        }));
        return command;
    }

    private static Command Status(Option<string?> config)
    {
        var id = new Argument<Guid>("id") { Description = "The job id." };
        var command = new Command("status", "Show one job as JSON: status, progress, result figures, artifacts.") { id };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            var found = await services.Provider.GetRequiredService<PipelineStore>().ReadJobAsync(result.GetValue(id), cancellationToken)
                ?? throw new CliException($"No job {result.GetValue(id)} in the state database.");
            var job = found.Job;
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                id = job.Id, pipeline_id = job.PipelineId, parent_job_id = job.ParentJobId, action = SingleActions.NameOf(job.Stage), job.Step,
                job.Stage, job.Attempt, job.Status, job.Progress, message = job.ProgressMessage,
                metrics = JsonSerializer.Deserialize<Dictionary<string, double>>(job.Metrics),
                artifacts = JsonSerializer.Deserialize<Dictionary<string, string>>(job.Artifacts),
                worker_id = job.WorkerId, error = job.ErrorReason, created_at = job.CreatedAt, started_at = job.StartedAt, completed_at = job.CompletedAt,
            }, PipelineView.Json));
            return 0;
        }));
        return command;
    }

    private static Command Logs(Option<string?> config)
    {
        var id = new Argument<Guid>("id") { Description = "The job id." };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new lines until the job ends." };
        var command = new Command("logs", "Print a job's log lines (kept in the state database by the worker that ran it).") { id, follow };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            var jobId = result.GetValue(id);
            var pipelines = services.Provider.GetRequiredService<PipelineStore>();
            var logs = services.Provider.GetRequiredService<JobLogStore>();
            if (await pipelines.ReadJobAsync(jobId, cancellationToken) is null)
            {
                throw new CliException($"No job {jobId} in the state database.");
            }
            long after = 0;
            while (true)
            {
                var lines = await logs.ReadAsync(jobId, after, 1000, cancellationToken);
                foreach (var line in lines)
                {
                    Console.WriteLine($"{line.Time:yyyy-MM-dd HH:mm:ss.fff} {line.Level[..Math.Min(3, line.Level.Length)].ToUpperInvariant()} {line.Message}");
                    after = line.Id;
                }
                if (lines.Count == 1000)
                {
                    continue;
                }
                var job = (await pipelines.ReadJobAsync(jobId, cancellationToken))!.Value.Job;
                var ended = job.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled
                    && job.CompletedAt < DateTime.UtcNow - Hosting.Logging.JobLogWriter.Settled;
                if (!result.GetValue(follow) || ended)
                {
                    return 0;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
            }
        }));
        return command;
    }

    private static Command Artifacts(Option<string?> config)
    {
        var id = new Argument<Guid>("id") { Description = "The job id." };
        var command = new Command("artifacts", "List the files in a job's folder, with their sizes.") { id };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            var folder = await FolderAsync(services, result.GetValue(id), cancellationToken);
            Console.WriteLine(folder);
            await foreach (var info in services.Artifacts.ListAsync(folder, cancellationToken))
            {
                Console.WriteLine($"  {info.Size,12:N0}  {Uri.UnescapeDataString(info.Uri.AbsoluteUri[folder.AbsoluteUri.Length..])}");
            }
            return 0;
        }));
        return command;
    }

    private static Command Download(Option<string?> config)
    {
        var id = new Argument<Guid>("id") { Description = "The job id." };
        var path = new Argument<string>("path") { Description = "The file's path inside the job's folder, as `job artifacts` lists it." };
        var output = new Option<string?>("--out", "-o") { Description = "Where to write it; default: its file name in the current folder." };
        var command = new Command("download", "Copy one file of a job's folder to a local file.") { id, path, output };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            var folder = await FolderAsync(services, result.GetValue(id), cancellationToken);
            var relative = result.GetValue(path)!;
            Uri file;
            try
            {
                file = folder.Append(relative);
            }
            catch (ArgumentException)
            {
                throw new CliException($"path: '{relative}' is not a plain relative path inside the job's folder.");
            }
            var destination = Path.GetFullPath(result.GetValue(output) ?? relative[(relative.LastIndexOf('/') + 1)..]);
            try
            {
                await using var source = await services.Artifacts.OpenReadAsync(file, cancellationToken);
                await using var target = File.Create(destination);
                await source.CopyToAsync(target, cancellationToken);
            }
            catch (ArtifactNotFoundException)
            {
                throw new CliException($"Job {result.GetValue(id)} has no file '{relative}'.");
            }
            Console.WriteLine(destination);
            return 0;
        }));
        return command;
    }

    private static async Task<Uri> FolderAsync(CliServices services, Guid jobId, CancellationToken cancellationToken)
    {
        var found = await services.Provider.GetRequiredService<PipelineStore>().ReadJobAsync(jobId, cancellationToken)
            ?? throw new CliException($"No job {jobId} in the state database.");
        return services.Artifacts.JobFolder(found.Job.PipelineId, found.Job.Id);
    }
}
