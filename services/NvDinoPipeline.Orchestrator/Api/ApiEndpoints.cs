using System.Text.Json;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using NvDinoPipeline.Checkpoints;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Orchestrator.Api;

/// <summary>A pipeline to start: the same fields as the <see cref="StartPipeline"/> message, in snake_case.</summary>
/// <param name="Spec">Only the keys that differ from the templates (a JSON object of nested sections or dotted keys, or YAML text).</param>
/// <param name="PipelineId">The id to give the pipeline, chosen by the client so that a request sent again starts nothing more; null: a new one.</param>
public sealed record StartPipelineRequest(string? TrainData, string? TestData, JsonElement? Spec, string? Name, string? ResultsQueue, Guid? PipelineId = null);

/// <summary>One action on its own, after a finished job (TAO API's <c>parent_job_id</c>); its spec keys merge over the parent's.</summary>
/// <param name="PipelineId">The id to give the pipeline that runs it, chosen by the client so that a request sent again starts nothing more.</param>
public sealed record StartJobRequest(string? Action, Guid? ParentJobId, JsonElement? Spec, string? TestData, string? Name, string? ResultsQueue,
    Guid? PipelineId = null);

public sealed record CancelRequest(string? Reason);

/// <summary>What a start, cancel or resume request was accepted as; the orchestrator carries it out.</summary>
public sealed record Accepted(Guid PipelineId, string Status, string Url, string? Action = null, Guid? ParentJobId = null);

public sealed record JobView(
    Guid Id,
    Guid PipelineId,
    Guid? ParentJobId,
    string Action,
    string Step,
    PipelineStage Stage,
    int Attempt,
    JobStatus Status,
    double? Progress,
    string? Message,
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyDictionary<string, string> Artifacts,
    string? WorkerId,
    string? Error,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? CompletedAt);

public sealed record LogLine(long Id, DateTime Time, string Level, string Message);

/// <param name="Next">Ask again with <c>after=next</c> for the lines written since.</param>
/// <param name="Finished">The job has ended and this answer holds its last lines: no further lines will come.</param>
public sealed record JobLogs(Guid JobId, IReadOnlyList<LogLine> Lines, long Next, bool Finished);

public sealed record ArtifactFile(string Path, long Size, DateTimeOffset Modified, string Url);

public sealed record JobArtifacts(Guid JobId, string Folder, IReadOnlyList<ArtifactFile> Files);

/// <param name="Final">The figures the job reported last (its result once it is done).</param>
/// <param name="Epochs">Training and distillation: one object per epoch, from the job's <c>metrics.jsonl</c>.</param>
public sealed record JobMetrics(Guid JobId, IReadOnlyDictionary<string, double> Final, IReadOnlyList<JsonElement> Epochs);

/// <summary>
/// The HTTP API, under <c>/api/v1</c>: pipelines (start, list, status, cancel, resume) and jobs (a single action after a
/// parent job, status, log lines, artifacts and their download, metrics). Reads come from the state database and the
/// artifact store; starts, cancels and resumes are checked here — an unknown pipeline or job is 404, bad input 400
/// naming the field or spec key, a request the pipeline's state does not allow 409 — and then sent to the orchestrator's
/// queue like any client's, so nothing runs until the orchestrator accepts them.
/// </summary>
public static class ApiEndpoints
{
    public const string Prefix = "/api/v1";

    public static void Map(IEndpointRouteBuilder app, IServiceProvider services)
    {
        var api = new Handlers(services);
        var read = app.MapGroup(Prefix);
        var control = app.MapGroup(Prefix).AddEndpointFilter(ApiServer.RequireControl);

        read.MapGet("/pipelines", api.ListPipelines).WithName("ListPipelines").WithSummary("The newest pipelines, newest first.");
        read.MapGet("/pipelines/{id:guid}", api.GetPipeline).WithName("GetPipeline").WithSummary("A pipeline's stages, jobs, progress, results and errors.");
        control.MapPost("/pipelines", api.StartPipeline).WithName("StartPipeline").WithSummary("Start a pipeline.");
        control.MapPost("/pipelines/{id:guid}/cancel", api.CancelPipeline).WithName("CancelPipeline").WithSummary("Cancel a running pipeline.");
        control.MapPost("/pipelines/{id:guid}/resume", api.ResumePipeline).WithName("ResumePipeline").WithSummary("Run a failed or canceled pipeline again from the step that did not finish.");

        control.MapPost("/jobs", api.StartJob).WithName("StartJob")
            .WithSummary("Run one action (train, distill, export, gen_trt_engine, inference, evaluate) after a finished parent job.");
        read.MapGet("/jobs/{id:guid}", api.GetJob).WithName("GetJob").WithSummary("One job: status, progress, result figures, artifacts.");
        read.MapGet("/jobs/{id:guid}/logs", api.GetLogs).WithName("GetJobLogs").WithSummary("The job's log lines after the line 'after'.");
        read.MapGet("/jobs/{id:guid}/artifacts", api.ListArtifacts).WithName("ListJobArtifacts").WithSummary("The files in the job's folder.");
        read.MapGet("/jobs/{id:guid}/artifacts/{**path}", api.DownloadArtifact).WithName("DownloadJobArtifact").WithSummary("One file of the job's folder.");
        read.MapGet("/jobs/{id:guid}/metrics", api.GetMetrics).WithName("GetJobMetrics").WithSummary("The job's figures: the last reported and, for training, one per epoch.");
    }

    private sealed class Handlers(IServiceProvider services)
    {
        private readonly PipelineReader _reader = ActivatorUtilities.CreateInstance<PipelineReader>(services);
        private PipelineStore Pipelines => services.GetRequiredService<PipelineStore>();
        private JobLogStore Logs => services.GetRequiredService<JobLogStore>();
        private IArtifactStore Artifacts => services.GetRequiredService<IArtifactStore>();
        private SpecLoader Specs => services.GetRequiredService<SpecLoader>();
        private WorkerStore Workers => services.GetRequiredService<WorkerStore>();

        /// <summary>Refuses a start whose GPUs no live training worker has, under the key that asks for them.</summary>
        private async Task CheckGpusAsync(ResolvedSpec spec, IEnumerable<PipelineStage> stages, Dictionary<string, string[]> errors,
            CancellationToken cancellationToken)
        {
            if (await GpuDemand.ProblemAsync(Workers, spec, stages, cancellationToken) is { } problem)
            {
                errors[GpuDemand.Key(spec)] = [problem];
            }
        }

        public async Task<IResult> ListPipelines(int? limit, CancellationToken cancellationToken)
        {
            if (limit is < 1 or > 1000)
            {
                return Invalid("limit", "must be between 1 and 1000");
            }
            return Results.Json(await _reader.ListAsync(limit ?? 20, cancellationToken), ApiServer.Json);
        }

        public async Task<IResult> GetPipeline(Guid id, CancellationToken cancellationToken) =>
            await _reader.ReadAsync(id, cancellationToken) is { } view ? Results.Json(view, ApiServer.Json) : NoPipeline(id);

        public async Task<IResult> StartPipeline(StartPipelineRequest request, CancellationToken cancellationToken)
        {
            if (SpecText(request.Spec, out var text) is { } specProblem)
            {
                return specProblem;
            }
            ResolvedSpec spec;
            try
            {
                spec = Specs.ResolveRequest(text, "spec");
            }
            catch (SpecValidationException exception)
            {
                return SpecInvalid(exception);
            }
            var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
            var train = Location(request.TrainData ?? spec.Get<string?>("dataset.train_dataset.images_dir"), "train_data", errors);
            var test = Location(request.TestData ?? spec.Get<string?>("dataset.test_dataset.images_dir"), "test_data", errors);
            if (train is null && !errors.ContainsKey("train_data"))
            {
                errors["train_data"] = ["no training data: give train_data or the spec key dataset.train_dataset.images_dir"];
            }
            CheckResultsQueue(request.ResultsQueue, errors);
            if (errors.Count == 0)
            {
                foreach (var (input, reason) in StartChecks.Unreadable(Artifacts.Access, Specs, spec, ("train_data", train), ("test_data", test)))
                {
                    errors[input] = [reason];
                }
                await CheckGpusAsync(spec, GpuDemand.PipelineStages(spec), errors, cancellationToken);
            }
            if (errors.Count > 0)
            {
                return Results.ValidationProblem(errors, detail: "The pipeline was not started.");
            }
            var start = new StartPipeline
            {
                PipelineId = request.PipelineId ?? NewId.NextGuid(), TrainDataUri = train, TestDataUri = test, Spec = text, Name = request.Name,
                ResultsQueue = request.ResultsQueue, RequestedAt = DateTimeOffset.UtcNow,
            };
            await SendAsync(start, cancellationToken);
            return Results.Accepted(PipelineUrl(start.PipelineId), new Accepted(start.PipelineId, "Accepted", PipelineUrl(start.PipelineId)));
        }

        public async Task<IResult> CancelPipeline(Guid id, CancelRequest? request, CancellationToken cancellationToken)
        {
            if (await _reader.ReadAsync(id, cancellationToken) is not { } view)
            {
                return NoPipeline(id);
            }
            if (view.Finished)
            {
                return Conflict($"Pipeline {id} is already {view.Status}; nothing to cancel.");
            }
            await SendAsync(new CancelPipeline { PipelineId = id, Reason = request?.Reason }, cancellationToken);
            return Results.Accepted(PipelineUrl(id), new Accepted(id, "CancelRequested", PipelineUrl(id)));
        }

        public async Task<IResult> ResumePipeline(Guid id, CancellationToken cancellationToken)
        {
            if (await _reader.ReadAsync(id, cancellationToken) is not { } view)
            {
                return NoPipeline(id);
            }
            if (view.Status is not (JobStatus.Error or JobStatus.Canceled))
            {
                return Conflict($"Pipeline {id} is {view.Status}; only a failed or canceled pipeline can be resumed.");
            }
            await SendAsync(new ResumePipeline { PipelineId = id }, cancellationToken);
            return Results.Accepted(PipelineUrl(id), new Accepted(id, "ResumeRequested", PipelineUrl(id)));
        }

        public async Task<IResult> StartJob(StartJobRequest request, CancellationToken cancellationToken)
        {
            var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
            if (string.IsNullOrWhiteSpace(request.Action))
            {
                errors["action"] = [$"required: one of {string.Join(", ", SingleActions.Names)}"];
            }
            if (request.ParentJobId is null)
            {
                errors["parent_job_id"] = ["required: the finished job whose artifacts the action starts from"];
            }
            var test = Location(request.TestData, "test_data", errors);
            CheckResultsQueue(request.ResultsQueue, errors);
            if (SpecText(request.Spec, out var text) is { } specProblem)
            {
                return specProblem;
            }
            if (errors.Count > 0)
            {
                return Results.ValidationProblem(errors, detail: "The job was not started.");
            }
            if (await Pipelines.ReadJobAsync(request.ParentJobId!.Value, cancellationToken) is not { } parent)
            {
                return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"No job {request.ParentJobId} (parent_job_id).");
            }
            ActionPlan plan;
            try
            {
                plan = SingleActions.Plan(request.Action!, new PipelineState(parent.Pipeline, parent.Jobs), parent.Job, text, test, Specs);
            }
            catch (ActionRequestException exception) when (exception.Problem == ActionProblem.ParentNotDone)
            {
                return Conflict(exception.Message);
            }
            catch (ActionRequestException exception)
            {
                return Results.ValidationProblem(new Dictionary<string, string[]> { [exception.Field] = [exception.Message] }, detail: "The job was not started.");
            }
            foreach (var (input, reason) in StartChecks.Unreadable(Artifacts.Access, Specs, plan.Spec, ("test_data", test)))
            {
                errors[input] = [reason];
            }
            await CheckGpusAsync(plan.Spec, plan.Steps.Where(s => s.Reuses is null).Select(s => s.Stage), errors, cancellationToken);
            if (errors.Count > 0)
            {
                return Results.ValidationProblem(errors, detail: "The job was not started.");
            }
            var start = new StartPipeline
            {
                PipelineId = request.PipelineId ?? NewId.NextGuid(), TestDataUri = test, Spec = text, Name = request.Name, ResultsQueue = request.ResultsQueue,
                Action = plan.Action, ParentJobId = request.ParentJobId, RequestedAt = DateTimeOffset.UtcNow,
            };
            await SendAsync(start, cancellationToken);
            return Results.Accepted(PipelineUrl(start.PipelineId),
                new Accepted(start.PipelineId, "Accepted", PipelineUrl(start.PipelineId), plan.Action, request.ParentJobId));
        }

        public async Task<IResult> GetJob(Guid id, CancellationToken cancellationToken)
        {
            if (await Pipelines.ReadJobAsync(id, cancellationToken) is not { Job: var job })
            {
                return NoJob(id);
            }
            return Results.Json(new JobView(job.Id, job.PipelineId, job.ParentJobId, SingleActions.NameOf(job.Stage), job.Step, job.Stage, job.Attempt,
                job.Status, job.Progress, job.ProgressMessage, PipelineReader.Parse<double>(job.Metrics), PipelineReader.Parse<string>(job.Artifacts),
                job.WorkerId, job.ErrorReason, job.CreatedAt, job.StartedAt, job.CompletedAt), ApiServer.Json);
        }

        public async Task<IResult> GetLogs(Guid id, long? after, int? limit, CancellationToken cancellationToken)
        {
            if (limit is < 1 or > 5000)
            {
                return Invalid("limit", "must be between 1 and 5000");
            }
            if (after is < 0)
            {
                return Invalid("after", "must be 0 or the 'next' of an earlier answer");
            }
            if (await Pipelines.ReadJobAsync(id, cancellationToken) is not { Job: var job })
            {
                return NoJob(id);
            }
            var lines = await Logs.ReadAsync(id, after ?? 0, limit ?? 1000, cancellationToken);
            // Lines reach the database up to half a second after they are logged, and the worker logs a last few after the
            // job's end: the log is complete once the job has been over for a while and this answer holds the rest.
            var finished = job.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled
                && job.CompletedAt < DateTime.UtcNow - Hosting.Logging.JobLogWriter.Settled && lines.Count < (limit ?? 1000);
            return Results.Json(new JobLogs(id, lines.Select(l => new LogLine(l.Id, l.Time, l.Level, l.Message)).ToList(),
                lines.Count > 0 ? lines[^1].Id : after ?? 0, finished), ApiServer.Json);
        }

        public async Task<IResult> ListArtifacts(Guid id, CancellationToken cancellationToken)
        {
            if (await Pipelines.ReadJobAsync(id, cancellationToken) is not { Job: var job })
            {
                return NoJob(id);
            }
            var folder = Artifacts.JobFolder(job.PipelineId, job.Id);
            var files = new List<ArtifactFile>();
            await foreach (var info in Artifacts.ListAsync(folder, cancellationToken))
            {
                var path = Uri.UnescapeDataString(info.Uri.AbsoluteUri[folder.AbsoluteUri.Length..]);
                files.Add(new ArtifactFile(path, info.Size, info.LastModified, $"{Prefix}/jobs/{id}/artifacts/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}"));
            }
            return Results.Json(new JobArtifacts(id, folder.ToString(), files.OrderBy(f => f.Path, StringComparer.Ordinal).ToList()), ApiServer.Json);
        }

        public async Task<IResult> DownloadArtifact(Guid id, string path, CancellationToken cancellationToken)
        {
            if (await Pipelines.ReadJobAsync(id, cancellationToken) is not { Job: var job })
            {
                return NoJob(id);
            }
            var folder = Artifacts.JobFolder(job.PipelineId, job.Id);
            Uri file;
            try
            {
                file = folder.Append(path);
            }
            catch (ArgumentException)
            {
                return Invalid("path", $"'{path}' is not a plain relative path inside the job's folder");
            }
            if (!file.AbsoluteUri.StartsWith(folder.AbsoluteUri, StringComparison.Ordinal) || file.AbsoluteUri.EndsWith('/'))
            {
                return Invalid("path", $"'{path}' is not a file inside the job's folder");
            }
            try
            {
                var stream = await Artifacts.OpenReadAsync(file, cancellationToken);
                return Results.Stream(stream, "application/octet-stream", fileDownloadName: path[(path.LastIndexOf('/') + 1)..]);
            }
            catch (ArtifactNotFoundException)
            {
                return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"Job {id} has no file '{path}'.");
            }
        }

        public async Task<IResult> GetMetrics(Guid id, CancellationToken cancellationToken)
        {
            if (await Pipelines.ReadJobAsync(id, cancellationToken) is not { Job: var job })
            {
                return NoJob(id);
            }
            var epochs = new List<JsonElement>();
            if (job.Stage is PipelineStage.Training or PipelineStage.Distillation)
            {
                try
                {
                    // An AutoML search trains nothing itself: its curves are those of the trial that won.
                    await using var stream = await Artifacts.OpenReadAsync(
                        Artifacts.JobFolder(job.PipelineId, AutomlSearches.TrainedJobId(job)).Append(CheckpointNames.MetricsFile), cancellationToken);
                    using var reader = new StreamReader(stream);
                    while (await reader.ReadLineAsync(cancellationToken) is { } line)
                    {
                        if (!string.IsNullOrWhiteSpace(line))
                        {
                            using var document = JsonDocument.Parse(line);
                            epochs.Add(document.RootElement.Clone());
                        }
                    }
                }
                catch (ArtifactNotFoundException)
                {
                    // No epoch has ended yet.
                }
            }
            return Results.Json(new JobMetrics(id, PipelineReader.Parse<double>(job.Metrics), epochs), ApiServer.Json);
        }

        private async Task SendAsync<T>(T message, CancellationToken cancellationToken) where T : class
        {
            var endpoint = await services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(Queues.Orchestrator));
            await endpoint.Send(message, cancellationToken);
        }

        /// <summary>A request's spec as text for the orchestrator: an object as its JSON, a string as it is (JSON or YAML), none as <c>{}</c>.</summary>
        private static IResult? SpecText(JsonElement? spec, out string text)
        {
            text = "{}";
            switch (spec?.ValueKind)
            {
                case null or JsonValueKind.Null or JsonValueKind.Undefined:
                    return null;
                case JsonValueKind.Object:
                    text = spec.Value.GetRawText();
                    return null;
                case JsonValueKind.String:
                    text = spec.Value.GetString()!;
                    return null;
                default:
                    return Invalid("spec", "must be an object of spec keys (nested sections or dotted keys) or spec text");
            }
        }

        private static Uri? Location(string? value, string field, Dictionary<string, string[]> errors)
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                return null;
            }
            if (!ArtifactUriExtensions.TryParseLocation(value, out var location) || location.Scheme is not ("file" or "s3"))
            {
                errors[field] = [$"'{value}' is neither an absolute path nor a file:// or s3:// URI"];
                return null;
            }
            return location;
        }

        private static void CheckResultsQueue(string? queue, Dictionary<string, string[]> errors)
        {
            if (queue is not null && ResultsQueueNames.Problem(queue) is { } problem)
            {
                errors["results_queue"] = [problem];
            }
        }

        private static IResult SpecInvalid(SpecValidationException exception) =>
            Results.ValidationProblem(
                exception.Errors.GroupBy(e => e.Key.Length == 0 ? "spec" : e.Key).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray()),
                detail: "The spec is not valid; nothing was started.");

        private static IResult Invalid(string field, string message) =>
            Results.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] });

        private static IResult Conflict(string detail) => Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: detail);

        private static IResult NoPipeline(Guid id) => Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"No pipeline {id}.");

        private static IResult NoJob(Guid id) => Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"No job {id}.");

        private static string PipelineUrl(Guid id) => $"{Prefix}/pipelines/{id}";
    }
}
