using NvDinoPipeline.Storage.S3;

namespace NvDinoPipeline.Storage;

/// <summary>
/// What the artifact store may touch. Reads go only to the read roots (<c>ArtifactStore:Root</c> and
/// <c>ArtifactStore:AllowedReadRoots</c>); writes only under the root, and while a job runs
/// (<see cref="ArtifactConfinement"/>) only under that job's folder. Local paths count where they really lead,
/// symbolic links followed. A location is checked before anything is opened, so a refused one reveals nothing
/// about what is there.
/// </summary>
public sealed class ArtifactAccessPolicy
{
    private const string ReadRootsSetting = $"{ArtifactStoreOptions.SectionName}:{nameof(ArtifactStoreOptions.AllowedReadRoots)}";

    private readonly Place _root;
    private readonly IReadOnlyList<Place> _readRoots;

    internal ArtifactAccessPolicy(Uri root, IEnumerable<Uri> allowedReadRoots)
    {
        Root = root;
        _root = Place.Of(root);
        ReadRoots = [root, .. allowedReadRoots.Where(r => r.AbsoluteUri != root.AbsoluteUri).DistinctBy(r => r.AbsoluteUri)];
        _readRoots = [.. ReadRoots.Select(Place.Of)];
    }

    /// <summary>The artifact root: every write goes under it.</summary>
    public Uri Root { get; }

    /// <summary>Where reads may go: the root first, then the configured extra roots.</summary>
    public IReadOnlyList<Uri> ReadRoots { get; }

    /// <summary>Throws <see cref="ArtifactAccessDeniedException"/> unless <paramref name="location"/> is under a read root.</summary>
    public void EnsureReadable(Uri location)
    {
        var place = Parse(location);
        if (!_readRoots.Any(root => root.Contains(place, real: false)))
        {
            throw Denied(location, $"is outside the locations this deployment reads ({string.Join(", ", ReadRoots)}); "
                + $"put it under one of them or add its folder or bucket to {ReadRootsSetting}");
        }
        if (place.IsFile && !_readRoots.Any(root => root.Contains(place, real: true)))
        {
            throw Denied(location, $"leads through a symbolic link out of the locations this deployment reads ({string.Join(", ", ReadRoots)})");
        }
    }

    /// <summary>True when <see cref="EnsureReadable"/> would let <paramref name="location"/> through.</summary>
    public bool IsReadable(Uri location)
    {
        try
        {
            EnsureReadable(location);
            return true;
        }
        catch (ArtifactAccessDeniedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Throws <see cref="ArtifactAccessDeniedException"/> unless <paramref name="location"/> may be written: under the
    /// root, and while a job runs under its folder (or named by <see cref="ArtifactConfinement.Permit"/>).
    /// </summary>
    public void EnsureWritable(Uri location)
    {
        var place = Parse(location);
        var confinement = ArtifactConfinement.Current;
        var permitted = confinement?.Permits(location) == true;
        var folder = confinement is null || permitted ? _root : Place.Of(confinement.Folder);
        var what = confinement is null || permitted
            ? $"is outside the artifact root {Root}; the store writes only under {ArtifactStoreOptions.SectionName}:{nameof(ArtifactStoreOptions.Root)}"
            : $"is outside the folder of this job ({confinement.Folder}); a job writes only under its own folder";
        if (!folder.Contains(place, real: false))
        {
            throw Denied(location, what);
        }
        if (place.IsFile && !folder.ContainsReally(place, _root))
        {
            throw Denied(location, $"leads through a symbolic link out of {(confinement is null || permitted ? "the artifact root" : "the folder of this job")}");
        }
    }

    /// <summary>A location as messages show it: user name and password replaced by <c>***</c>.</summary>
    public static string Display(Uri? location) => location switch
    {
        null => "(none)",
        { IsAbsoluteUri: true, UserInfo.Length: > 0 } => location.AbsoluteUri.Replace(location.UserInfo + "@", "***@", StringComparison.Ordinal),
        { IsAbsoluteUri: true } => location.AbsoluteUri,
        _ => location.OriginalString,
    };

    internal static ArtifactAccessDeniedException Denied(Uri? location, string rule) => new(Display(location), rule);

    /// <summary>The local path or bucket and key a location names, refusing every form that could reach elsewhere.</summary>
    private static Place Parse(Uri location)
    {
        ArgumentNullException.ThrowIfNull(location);
        if (!location.IsAbsoluteUri)
        {
            throw Denied(location, "is not an absolute location; give file:///absolute/path or s3://bucket/key");
        }
        if (location.UserInfo.Length > 0)
        {
            throw Denied(location, "carries a user name or password; credentials belong in the ArtifactStore:S3 settings, never in a location");
        }
        if (location.Scheme is not (ArtifactLocations.FileScheme or ArtifactLocations.S3Scheme))
        {
            throw Denied(location, $"has scheme '{location.Scheme}'; the store reads and writes only file:// and s3:// locations");
        }
        if (location.Query.Length > 0 || location.Fragment.Length > 0)
        {
            throw Denied(location, "has a query or fragment; escape '?' and '#' in names as %3F and %23");
        }

        string path;
        if (location.Scheme == ArtifactLocations.FileScheme)
        {
            if (location.Host.Length > 0 && !location.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            {
                throw Denied(location, $"names host '{location.Host}'; file locations are local absolute paths (file:///…)");
            }
            path = location.LocalPath;
        }
        else
        {
            S3Location s3;
            try
            {
                s3 = S3Location.Parse(location, nameof(location));
            }
            catch (ArgumentException exception)
            {
                throw Denied(location, $"is not a valid s3:// location: {exception.Message}");
            }
            path = s3.Key;
        }

        if (path.Any(char.IsControl))
        {
            throw Denied(location, "holds a control character");
        }
        if (path.Split('/').Any(segment => segment is "." or ".."))
        {
            throw Denied(location, "has a '.' or '..' segment (perhaps written %2e%2e); a location names its folder directly");
        }
        return location.Scheme == ArtifactLocations.FileScheme
            ? Place.File(path)
            : Place.Object(location.Host, path);
    }

    /// <summary>A local path, or a bucket and key; a root's path or key ends with '/' (or is empty: the whole bucket).</summary>
    private sealed record Place(bool IsFile, string Bucket, string Path)
    {
        public static Place File(string path) => new(true, "", path);

        public static Place Object(string bucket, string key) => new(false, bucket, key);

        public static Place Of(Uri root) =>
            root.Scheme == ArtifactLocations.FileScheme
                ? File(root.LocalPath)
                : Object(root.Host, Uri.UnescapeDataString(root.AbsolutePath.TrimStart('/')));

        /// <summary>Whether <paramref name="place"/> is this root or lies below it: as written, or (real) where it leads.</summary>
        public bool Contains(Place place, bool real)
        {
            if (IsFile != place.IsFile)
            {
                return false;
            }
            if (!IsFile)
            {
                return place.Bucket == Bucket && place.Path.StartsWith(Path, StringComparison.Ordinal);
            }
            var rootReal = RealPath.Resolve(Path);
            return real
                ? RealPath.IsWithin(RealPath.Resolve(place.Path), rootReal)
                : RealPath.IsWithin(place.Path, Path) || RealPath.IsWithin(place.Path, rootReal);
        }

        /// <summary>
        /// Whether <paramref name="place"/> really leads into this folder of <paramref name="root"/>: into the folder
        /// at the same place under the root's real path, so a folder that is itself a link elsewhere does not count.
        /// </summary>
        public bool ContainsReally(Place place, Place root)
        {
            var rootReal = RealPath.Resolve(root.Path).TrimEnd('/') + "/";
            var relative = Path.StartsWith(root.Path, StringComparison.Ordinal) ? Path[root.Path.Length..] : "";
            return RealPath.IsWithin(RealPath.Resolve(place.Path), rootReal + relative);
        }
    }
}
