namespace NvDinoPipeline.Staging.Sources;

/// <summary>Progress of one staging, updated by the reader, decoders and writer and read by the progress reporter.</summary>
internal sealed class StagingCounters
{
    private long _sourceBytesRead;
    private int _filesRead;
    private int _imagesStaged;

    /// <summary>Size of the archive or of all listed files, when known up front.</summary>
    public long? SourceBytesTotal { get; set; }

    /// <summary>Number of listed files (folders and prefixes), when known up front.</summary>
    public int? FilesTotal { get; set; }

    public long SourceBytesRead => Interlocked.Read(ref _sourceBytesRead);

    public int FilesRead => Volatile.Read(ref _filesRead);

    public int ImagesStaged => Volatile.Read(ref _imagesStaged);

    public void AddSourceBytes(long bytes) => Interlocked.Add(ref _sourceBytesRead, bytes);

    public void AddFile() => Interlocked.Increment(ref _filesRead);

    public void AddImage() => Interlocked.Increment(ref _imagesStaged);
}
