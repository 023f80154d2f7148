using System.Text.Json;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Staging.Images;

namespace NvDinoPipeline.Staging.Output;

/// <summary>
/// Writes <c>manifest.jsonl</c>: one JSON object per staged image, in dataset order, so line <c>i</c>
/// describes image <c>i</c> of the shards.
/// </summary>
internal sealed class ManifestWriter : IAsyncDisposable
{
    private readonly FileStream _file;
    private readonly Utf8JsonWriter _json;

    public ManifestWriter(string path)
    {
        _file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        _json = new Utf8JsonWriter(_file, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public async ValueTask WriteAsync(int index, string relativePath, string sha256, StagedImage image, int sourceBytes, string shard, CancellationToken cancellationToken)
    {
        _json.WriteStartObject();
        _json.WriteNumber("index", index);
        _json.WriteString("path", relativePath);
        _json.WriteString("sha256", sha256);
        _json.WriteNumber("width", image.Width);
        _json.WriteNumber("height", image.Height);
        _json.WriteString("format", image.Format.Name());
        _json.WriteNumber("bytes", sourceBytes);
        _json.WriteString("shard", shard);
        _json.WriteNumber("stagedWidth", image.StagedWidth);
        _json.WriteNumber("stagedHeight", image.StagedHeight);
        _json.WriteEndObject();
        await _json.FlushAsync(cancellationToken);
        _file.WriteByte((byte)'\n');
        // One writer for many top-level values: Reset keeps it from separating lines with commas.
        _json.Reset();
    }

    public async ValueTask DisposeAsync()
    {
        await _json.DisposeAsync();
        await _file.DisposeAsync();
    }
}
