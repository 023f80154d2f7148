using System.Buffers.Binary;
using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Orchestrator.Api;

public sealed record NeighbourImage(int Index, string Path, string Image, double? Cosine = null);

public sealed record NeighbourRow(NeighbourImage Query, IReadOnlyList<NeighbourImage> Neighbours);

/// <param name="Gallery">How many embedded images the neighbours were searched among (the pipeline's test images).</param>
public sealed record Neighbours(Guid PipelineId, int Gallery, int Dimension, IReadOnlyList<NeighbourRow> Rows);

/// <summary>
/// The dashboard: its page and scripts (embedded in this assembly, served without a token: they hold no data; every figure
/// they show comes from the API with the viewer's token) and the two calls only it needs — a finished pipeline's test
/// images with their nearest neighbours by embedding, and a test image as a small PNG.
/// </summary>
public static class DashboardEndpoints
{
    private const string ResourcePrefix = "NvDinoPipeline.Orchestrator.Api.Dashboard.";
    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.Ordinal)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
    };

    /// <summary>The most test images the neighbours are searched among.</summary>
    public const int MaxGallery = 20_000;

    /// <summary>Paths served without a token.</summary>
    public static bool IsPublic(PathString path) => path == "/" || path.StartsWithSegments("/dashboard");

    public static void Map(WebApplication app, IServiceProvider services)
    {
        app.MapGet("/", () => Page("index.html")).ExcludeFromDescription();
        app.MapGet("/dashboard/{file}", (string file) => Page(file)).ExcludeFromDescription();
        var read = app.MapGroup(ApiEndpoints.Prefix);
        read.MapGet("/pipelines/{id:guid}/neighbours", (Guid id, int? queries, int? k, CancellationToken cancellationToken) =>
                Missing(() => NeighboursAsync(services, id, queries ?? 8, k ?? 5, cancellationToken)))
            .WithName("GetNeighbours").WithSummary("A finished pipeline's test images, each with its nearest test images by cosine of the embeddings.");
        read.MapGet("/pipelines/{id:guid}/images/{index:int}", (Guid id, int index, int? size, CancellationToken cancellationToken) =>
                Missing(() => ImageAsync(services, id, index, size ?? 96, cancellationToken)))
            .WithName("GetTestImage").WithSummary("One staged test image of the pipeline, scaled to at most 'size' pixels a side, as PNG.");
    }

    /// <summary>A stage's output that is gone from the store, or is not what it should be, is 404, not an error of the API.</summary>
    private static async Task<IResult> Missing(Func<Task<IResult>> answer)
    {
        try
        {
            return await answer();
        }
        catch (Exception exception) when (exception is ArtifactNotFoundException or InvalidDataException)
        {
            return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: exception.Message);
        }
        catch (JsonException exception)
        {
            // A stored plan or stage record this version cannot read (the pipeline's status still shows it, with its reason).
            return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict",
                detail: $"The pipeline's stored plan or a stage's record cannot be read: {exception.Message}");
        }
    }

    private static IResult Page(string file)
    {
        var extension = Path.GetExtension(file);
        var stream = ContentTypes.TryGetValue(extension, out _) && !file.Contains('/')
            ? Assembly.GetExecutingAssembly().GetManifestResourceStream(ResourcePrefix + file)
            : null;
        return stream is null
            ? Results.NotFound()
            : Results.Stream(stream, ContentTypes[extension]);
    }

    private static async Task<IResult> NeighboursAsync(IServiceProvider services, Guid id, int queries, int k, CancellationToken cancellationToken)
    {
        if (queries is < 1 or > 64 || k is < 1 or > 32)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { [queries is < 1 or > 64 ? "queries" : "k"] = ["queries: 1 to 64, k: 1 to 32"] });
        }
        if (await services.GetRequiredService<PipelineStore>().ReadAsync(id, cancellationToken) is not { } found)
        {
            return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"No pipeline {id}.");
        }
        var state = new PipelineState(found.Pipeline, found.Jobs);
        if (state.Latest(PipelineStep.Inference) is not { Status: JobStatus.Done, Completion: { } completion })
        {
            return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict",
                detail: $"Pipeline {id} has no finished inference step: it has embedded no images yet.");
        }
        var inference = JsonSerializer.Deserialize<InferenceCompleted>(completion)!;
        var artifacts = services.GetRequiredService<IArtifactStore>();
        var index = new List<(int Index, string Path)>();
        await using (var lines = await artifacts.OpenReadAsync(inference.IndexUri, cancellationToken))
        using (var reader = new StreamReader(lines))
        {
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }
                using var entry = JsonDocument.Parse(line);
                var key = entry.RootElement.GetProperty("key").GetString() ?? "";
                index.Add((int.Parse(key[(key.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture),
                    entry.RootElement.GetProperty("input_path").GetString() ?? ""));
            }
        }
        var dimension = inference.Dimension;
        // Searched among the first MaxGallery images: a dashboard's grid, not a search service, and memory stays bounded.
        var count = Math.Min(index.Count, MaxGallery);
        if (count < 2 || dimension < 1)
        {
            return Results.Json(new Neighbours(id, count, dimension, []), ApiServer.Json);
        }
        // Queries spread over the test images; the embeddings file is streamed once, keeping each query's k best.
        var chosen = Enumerable.Range(0, Math.Min(queries, count)).Select(q => (int)((long)q * count / Math.Min(queries, count))).ToArray();
        var rows = new float[count][];
        var norms = new double[count];
        await using (var embeddings = await artifacts.OpenReadAsync(inference.EmbeddingsUri, cancellationToken))
        {
            var buffer = new byte[dimension * 4];
            for (var row = 0; row < count; row++)
            {
                await embeddings.ReadExactlyAsync(buffer, cancellationToken);
                var vector = new float[dimension];
                for (var d = 0; d < dimension; d++)
                {
                    vector[d] = BinaryPrimitives.ReadSingleLittleEndian(buffer.AsSpan(d * 4));
                }
                rows[row] = vector;
                norms[row] = Math.Sqrt(vector.Sum(v => (double)v * v));
            }
        }
        string Image(int datasetIndex) => $"{ApiEndpoints.Prefix}/pipelines/{id}/images/{datasetIndex}";
        var result = chosen.Select(query =>
        {
            var best = Enumerable.Range(0, count).Where(other => other != query)
                .Select(other => (other, cosine: Dot(rows[query], rows[other]) / Math.Max(norms[query] * norms[other], 1e-12)))
                .OrderByDescending(pair => pair.cosine).Take(k)
                .Select(pair => new NeighbourImage(index[pair.other].Index, index[pair.other].Path, Image(index[pair.other].Index), Math.Round(pair.cosine, 4)))
                .ToList();
            return new NeighbourRow(new NeighbourImage(index[query].Index, index[query].Path, Image(index[query].Index)), best);
        }).ToList();
        return Results.Json(new Neighbours(id, count, dimension, result), ApiServer.Json);
    }

    private static double Dot(float[] a, float[] b)
    {
        var sum = 0.0;
        for (var i = 0; i < a.Length; i++)
        {
            sum += (double)a[i] * b[i];
        }
        return sum;
    }

    private static async Task<IResult> ImageAsync(IServiceProvider services, Guid id, int index, int size, CancellationToken cancellationToken)
    {
        if (size is < 8 or > 512)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["size"] = ["8 to 512 pixels"] });
        }
        if (await services.GetRequiredService<PipelineStore>().ReadAsync(id, cancellationToken) is not { } found)
        {
            return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"No pipeline {id}.");
        }
        var state = new PipelineState(found.Pipeline, found.Jobs);
        if (state.Latest(PipelineStep.StageTest) is not { Status: JobStatus.Done, Completion: { } completion })
        {
            return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"Pipeline {id} has staged no test images.");
        }
        var staged = JsonSerializer.Deserialize<DatasetStaged>(completion)!;
        var scratch = services.GetRequiredService<IOptions<WorkerOptions>>().Value.ScratchDirectory;
        using var reader = await ShardReader.OpenAsync(services.GetRequiredService<IArtifactStore>(), staged.DatasetUri,
            Path.Combine(scratch, "dashboard"), cancellationToken);
        if (index < 0 || index >= reader.Count)
        {
            return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found",
                detail: $"Pipeline {id} staged {reader.Count} test images; there is no image {index}.");
        }
        var image = reader.Read(index);
        var scale = Math.Min(1.0, (double)size / Math.Max(image.Width, image.Height));
        var (width, height) = (Math.Max(1, (int)Math.Round(image.Width * scale)), Math.Max(1, (int)Math.Round(image.Height * scale)));
        var png = PngEncoder.Encode(width, height, (x, y) =>
        {
            var source = (Math.Min(image.Height - 1, (int)(y / scale)) * image.Width + Math.Min(image.Width - 1, (int)(x / scale))) * 3;
            return (image.Rgb[source], image.Rgb[source + 1], image.Rgb[source + 2]);
        });
        return Results.File(png, "image/png");
    }
}
