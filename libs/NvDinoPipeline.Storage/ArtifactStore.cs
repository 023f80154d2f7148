using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Storage.FileSystem;
using NvDinoPipeline.Storage.S3;

namespace NvDinoPipeline.Storage;

/// <summary>
/// The artifact store: routes each URI by scheme to the file system (<c>file://</c>) or to S3 (<c>s3://</c>), after
/// <see cref="Access"/> has let it through: reads only under the read roots, writes only under <see cref="Root"/>
/// (and while a job runs, only under its folder; see <see cref="ArtifactConfinement"/>).
/// </summary>
public sealed class ArtifactStore : IArtifactStore, IDisposable
{
    private readonly FileArtifactStore _files;
    private readonly Lazy<S3ArtifactStore> _s3;

    public ArtifactStore(IOptions<ArtifactStoreOptions> options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var value = options.Value;
        var validation = new ArtifactStoreOptionsValidator().Validate(Options.DefaultName, value);
        if (validation.Failed)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ArtifactStoreOptions), validation.Failures);
        }

        Root = value.GetRootUri();
        Access = new ArtifactAccessPolicy(Root, value.GetAllowedReadRootUris());
        _files = new FileArtifactStore(Access);
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<ArtifactStore>();
        var s3Options = value.S3;
        _s3 = new Lazy<S3ArtifactStore>(() => new S3ArtifactStore(S3ClientFactory.Create(s3Options), s3Options, logger));
    }

    public Uri Root { get; }

    public ArtifactAccessPolicy Access { get; }

    public Uri JobFolder(Guid pipelineId, Guid jobId) => new($"{Root.AbsoluteUri}{pipelineId:D}/{jobId:D}/");

    public Task<ArtifactInfo> PutAsync(Uri destination, Stream content, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (!content.CanRead)
        {
            throw new ArgumentException($"The content stream for '{destination}' is not readable.", nameof(content));
        }

        return Writable(destination, nameof(destination)).PutAsync(destination, content, ct);
    }

    public async Task<ArtifactInfo> PutFileAsync(Uri destination, string localPath, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(localPath);
        var backend = Writable(destination, nameof(destination));
        if (!File.Exists(localPath))
        {
            throw new FileNotFoundException($"Cannot upload '{localPath}' to '{destination}': the file does not exist.", localPath);
        }

        await using var content = new FileStream(localPath, FileMode.Open, FileAccess.Read, FileShare.Read, 0, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return await backend.PutAsync(destination, content, ct);
    }

    public Task<Stream> OpenReadAsync(Uri source, CancellationToken ct) =>
        Readable(source, nameof(source)).OpenReadAsync(source, ct);

    public Task<ArtifactInfo?> GetInfoAsync(Uri uri, CancellationToken ct) =>
        Readable(uri, nameof(uri)).GetInfoAsync(uri, ct);

    public IAsyncEnumerable<ArtifactInfo> ListAsync(Uri prefix, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        Access.EnsureReadable(prefix);
        return Backend(prefix, nameof(prefix)).ListAsync(prefix, ct);
    }

    public Task DeleteAsync(Uri uri, CancellationToken ct) =>
        Writable(uri, nameof(uri)).DeleteAsync(uri, ct);

    public Task<string> GetLocalPathAsync(Uri uri, string scratchDirectory, CancellationToken ct) =>
        Readable(uri, nameof(uri)).GetLocalPathAsync(uri, scratchDirectory, ct);

    public void Dispose()
    {
        if (_s3.IsValueCreated)
        {
            _s3.Value.Dispose();
        }
    }

    private IArtifactBackend Readable(Uri uri, string paramName)
    {
        ArgumentNullException.ThrowIfNull(uri, paramName);
        Access.EnsureReadable(uri);
        return BackendForObject(uri, paramName);
    }

    private IArtifactBackend Writable(Uri uri, string paramName)
    {
        ArgumentNullException.ThrowIfNull(uri, paramName);
        Access.EnsureWritable(uri);
        return BackendForObject(uri, paramName);
    }

    private IArtifactBackend BackendForObject(Uri uri, string paramName)
    {
        ArtifactLocations.RequireObjectUri(uri, paramName);
        return Backend(uri, paramName);
    }

    private IArtifactBackend Backend(Uri uri, string paramName)
    {
        ArgumentNullException.ThrowIfNull(uri, paramName);
        if (!uri.IsAbsoluteUri)
        {
            throw new ArgumentException($"'{uri}' is not an absolute URI; artifacts are addressed as file:///abs/path or s3://bucket/key.", paramName);
        }

        return uri.Scheme switch
        {
            ArtifactLocations.FileScheme => _files,
            ArtifactLocations.S3Scheme => _s3.Value,
            _ => throw new ArgumentException($"'{uri}' has scheme '{uri.Scheme}'; the artifact store supports file:// and s3://.", paramName),
        };
    }
}
