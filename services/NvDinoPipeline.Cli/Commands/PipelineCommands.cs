using NvDinoPipeline.Orchestrator.Api;
using System.CommandLine;
using System.Text.Json;
using MassTransit;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Cli.Commands;

public static class PipelineCommands
{
    public static Command Build(Option<string?> config)
    {
        var pipeline = new Command("pipeline", "Start, inspect, cancel and resume pipelines.");
        pipeline.Subcommands.Add(Start(config));
        pipeline.Subcommands.Add(Status(config));
        pipeline.Subcommands.Add(List(config));
        pipeline.Subcommands.Add(Watch(config));
        pipeline.Subcommands.Add(Cancel(config));
        pipeline.Subcommands.Add(Resume(config));
        return pipeline;
    }

    private static Command Start(Option<string?> config)
    {
        var train = new Option<string?>("--train")
        {
            Description = $"Training images: an archive, a folder, file:// or s3:// URI; shorthand for {TrainImagesKey}.",
        };
        var test = new Option<string?>("--test") { Description = $"Images to embed once the model is deployed; shorthand for {TestImagesKey}." };
        var spec = new SpecInputs();
        var name = new Option<string?>("--name") { Description = "A name to show in status and list." };
        var wait = new Option<bool>("--wait") { Description = "Wait for the pipeline to finish, showing progress." };
        var command = new Command("start", "Start a pipeline and print its id.") { train, test, name, wait };
        spec.AddTo(command);
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            var resolved = spec.Resolve(result);
            var trainData = DataFrom(resolved, "--train", result.GetValue(train), TrainImagesKey)
                ?? throw new CliException($"no training data: give --train or {TrainImagesKey} (in a --spec file, --set or --spec-overrides).");
            var testData = DataFrom(resolved, "--test", result.GetValue(test), TestImagesKey);
            var start = new StartPipeline
            {
                PipelineId = NewId.NextGuid(),
                TrainDataUri = DataUris.Parse(trainData, "--train"),
                TestDataUri = testData is null ? null : DataUris.Parse(testData, "--test"),
                Spec = resolved.ToJson(),
                Name = result.GetValue(name),
                RequestedAt = DateTimeOffset.UtcNow,
            };
            var configFile = result.GetValue(config);
            await using var services = CliServices.Create(configFile);
            EnsureReadable(services.Artifacts.Access, start, resolved);
            return await Cli.SendAsync(services, configFile, start, start.PipelineId, result.GetValue(wait), () => Console.WriteLine(start.PipelineId), cancellationToken);
        }));
        return command;
    }

    private const string TrainImagesKey = "dataset.train_dataset.images_dir";
    private const string TestImagesKey = "dataset.test_dataset.images_dir";

    /// <summary>
    /// The data a flag and its spec key name: either alone, or both when they agree; a flag and a key naming different
    /// data is an error naming both.
    /// </summary>
    internal static string? DataFrom(ResolvedSpec spec, string flag, string? flagValue, string key)
    {
        var keyValue = spec.Get<string?>(key) is { Length: > 0 } text ? text : null;
        if (flagValue is not null && keyValue is not null && !SameLocation(flagValue, keyValue))
        {
            throw new CliException($"{flag} '{flagValue}' and {key} '{keyValue}' name different data; give one of them (or the same location in both).");
        }
        return flagValue ?? keyValue;
    }

    private static bool SameLocation(string a, string b) =>
        string.Equals(a, b, StringComparison.Ordinal)
        || (Uri.TryCreate(a, UriKind.Absolute, out var ua) && Uri.TryCreate(b, UriKind.Absolute, out var ub) && ua == ub)
        || (!a.Contains("://", StringComparison.Ordinal) && !b.Contains("://", StringComparison.Ordinal)
            && string.Equals(Path.GetFullPath(a).TrimEnd('/'), Path.GetFullPath(b).TrimEnd('/'), StringComparison.Ordinal));

    /// <summary>Refuses, before anything is sent, data and spec inputs outside the locations this deployment reads (with this client's settings).</summary>
    private static void EnsureReadable(ArtifactAccessPolicy access, StartPipeline start, ResolvedSpec spec)
    {
        var problems = StartChecks.Unreadable(access, SpecLoader.CreateDefault(), spec, ("--train", start.TrainDataUri), ("--test", start.TestDataUri));
        if (problems.Count > 0)
        {
            throw new CliException($"the pipeline would read where this deployment does not allow; nothing was started.{Environment.NewLine}  "
                + string.Join(Environment.NewLine + "  ", problems.Select(p => $"{p.Input}: {p.Reason}")));
        }
    }

    private static Command Status(Option<string?> config)
    {
        var id = new Argument<Guid>("id") { Description = "The pipeline id." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("status", "Show a pipeline's stages, progress and errors.") { id, json };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            var view = await services.Reader.ReadAsync(result.GetValue(id), cancellationToken)
                ?? throw new CliException($"No pipeline {result.GetValue(id)} in the state database.");
            Console.Write(result.GetValue(json) ? JsonSerializer.Serialize(view, PipelineView.Json) + Environment.NewLine : PipelineRendering.Render(view, bars: false));
            return 0;
        }));
        return command;
    }

    private static Command List(Option<string?> config)
    {
        var limit = new Option<int>("--limit") { Description = "How many of the newest pipelines.", DefaultValueFactory = _ => 20 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("list", "List pipelines, newest first.") { limit, json };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            var views = await services.Reader.ListAsync(result.GetValue(limit), cancellationToken);
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(views, PipelineView.Json));
                return 0;
            }
            foreach (var view in views)
            {
                var current = view.Steps.FirstOrDefault(s => s.Status is JobStatus.Running or JobStatus.Pending)?.Step ?? "";
                Console.WriteLine($"{view.Id}  {view.Status,-9} {current,-12} {view.CreatedAt:yyyy-MM-dd HH:mm:ss}  {view.Name}");
            }
            return 0;
        }));
        return command;
    }

    private static Command Watch(Option<string?> config)
    {
        var id = new Argument<Guid>("id") { Description = "The pipeline id." };
        var command = new Command("watch", "Live per-stage progress until the pipeline ends.") { id };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            return await Cli.WaitAsync(services, result.GetValue(id), cancellationToken);
        }));
        return command;
    }

    private static Command Cancel(Option<string?> config)
    {
        var id = new Argument<Guid>("id") { Description = "The pipeline id." };
        var reason = new Option<string?>("--reason") { Description = "Recorded with the cancel." };
        var command = new Command("cancel", "Cancel a pipeline: running stages stop, keeping their last checkpoint.") { id, reason };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            var view = await services.Reader.ReadAsync(result.GetValue(id), cancellationToken)
                ?? throw new CliException($"No pipeline {result.GetValue(id)} in the state database.");
            if (view.Finished)
            {
                throw new CliException($"Pipeline {view.Id} is already {view.Status}; nothing to cancel.");
            }
            await services.Control.SendAsync(new CancelPipeline { PipelineId = view.Id, Reason = result.GetValue(reason) }, cancellationToken);
            Console.WriteLine($"cancel requested for {view.Id}");
            return 0;
        }));
        return command;
    }

    private static Command Resume(Option<string?> config)
    {
        var id = new Argument<Guid>("id") { Description = "The pipeline id." };
        var wait = new Option<bool>("--wait") { Description = "Wait for the pipeline to finish, showing progress." };
        var command = new Command("resume", "Run a failed or canceled pipeline again from the stage that did not finish.") { id, wait };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            var configFile = result.GetValue(config);
            await using var services = CliServices.Create(configFile);
            var view = await services.Reader.ReadAsync(result.GetValue(id), cancellationToken)
                ?? throw new CliException($"No pipeline {result.GetValue(id)} in the state database.");
            if (view.Status is not (JobStatus.Error or JobStatus.Canceled))
            {
                throw new CliException($"Pipeline {view.Id} is {view.Status}; only a failed or canceled pipeline can be resumed.");
            }
            return await Cli.SendAsync(services, configFile, new ResumePipeline { PipelineId = view.Id }, view.Id, result.GetValue(wait),
                () => Console.WriteLine($"resume requested for {view.Id}"), cancellationToken);
        }));
        return command;
    }
}
