using System.Security.Cryptography;

namespace NvDinoPipeline.Storage.Tests;

public sealed class FileArtifactStoreTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly ArtifactStore _store;
    private readonly CancellationToken _ct;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromMinutes(1));

    public FileArtifactStoreTests()
    {
        _ct = _timeout.Token;
        _store = TestStores.Create(_folder.Uri.AbsoluteUri);
    }

    public void Dispose()
    {
        _store.Dispose();
        _folder.Dispose();
        _timeout.Dispose();
    }

    [Fact]
    public async Task Round_trip_returns_the_same_bytes_and_records_their_sha256()
    {
        var data = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        var uri = _store.Root.Append("models/teacher.onnx");

        var written = await _store.PutAsync(uri, new MemoryStream(data), _ct);

        var expectedSha = Convert.ToHexStringLower(SHA256.HashData(data));
        Assert.Equal(data.Length, written.Size);
        Assert.Equal(expectedSha, written.Sha256);
        var info = await _store.GetInfoAsync(uri, _ct);
        Assert.NotNull(info);
        Assert.Equal(expectedSha, info.Sha256);
        Assert.Equal(data.Length, info.Size);
        await using var read = await _store.OpenReadAsync(uri, _ct);
        var copy = new MemoryStream();
        await read.CopyToAsync(copy, _ct);
        Assert.Equal(data, copy.ToArray());
        Assert.Equal(Path.Combine(_folder.Path, "models", "teacher.onnx"), await _store.GetLocalPathAsync(uri, "/nonexistent-scratch", _ct));
    }

    [Fact]
    public async Task PutFileAsync_copies_a_local_file_and_replaces_an_existing_object()
    {
        var source = Path.Combine(_folder.Path, "source.bin");
        await File.WriteAllBytesAsync(source, [1, 2, 3], _ct);
        var uri = _store.JobFolder(Guid.NewGuid(), Guid.NewGuid()).Append("weights.bin");
        await _store.PutAsync(uri, new MemoryStream([9, 9, 9, 9, 9]), _ct);

        var info = await _store.PutFileAsync(uri, source, _ct);

        Assert.Equal(3, info.Size);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData([1, 2, 3])), (await _store.GetInfoAsync(uri, _ct))!.Sha256);
        Assert.Equal([1, 2, 3], await File.ReadAllBytesAsync(await _store.GetLocalPathAsync(uri, _folder.Path, _ct), _ct));
    }

    [Fact]
    public async Task A_reader_sees_nothing_until_the_write_completes()
    {
        var uri = _store.Root.Append("run/embeddings.csv");
        var source = new GatedStream(new MemoryStream(RandomNumberGenerator.GetBytes(200_000)), before: 100_000);

        var put = _store.PutAsync(uri, source, _ct);
        await source.ReachedGate.WaitAsync(TimeSpan.FromSeconds(10), _ct);

        Assert.Null(await _store.GetInfoAsync(uri, _ct));
        Assert.Empty(await _store.ListAsync(_store.Root, _ct).ToListAsync(_ct));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => _store.OpenReadAsync(uri, _ct));

        source.Release();
        var written = await put;
        Assert.Equal(200_000, written.Size);
        Assert.Equal(written.Sha256, (await _store.GetInfoAsync(uri, _ct))!.Sha256);
    }

    [Fact]
    public async Task A_failing_stream_leaves_the_previous_object_intact_and_no_temporary_files()
    {
        var uri = _store.Root.Append("model.bin");
        var previous = await _store.PutAsync(uri, new MemoryStream([1, 2, 3, 4]), _ct);
        var failing = new GatedStream(new MemoryStream(new byte[50_000]), before: 10_000, failAtGate: true);
        failing.Release();

        await Assert.ThrowsAsync<IOException>(() => _store.PutAsync(uri, failing, _ct));

        Assert.Equal(previous, await _store.GetInfoAsync(uri, _ct));
        Assert.Equal([1, 2, 3, 4], await File.ReadAllBytesAsync(Path.Combine(_folder.Path, "model.bin"), _ct));
        var names = Directory.GetFiles(_folder.Path).Select(p => Path.GetFileName(p)!).Order().ToArray();
        Assert.Equal([".model.bin.sha256", "model.bin"], names);
    }

    [Fact]
    public async Task A_cancelled_write_leaves_no_object()
    {
        var uri = _store.Root.Append("cancelled.bin");
        var source = new GatedStream(new MemoryStream(new byte[50_000]), before: 10_000);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(_ct);

        var put = _store.PutAsync(uri, source, cancel.Token);
        await source.ReachedGate.WaitAsync(TimeSpan.FromSeconds(10), _ct);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => put);
        Assert.Null(await _store.GetInfoAsync(uri, _ct));
        Assert.Empty(Directory.GetFiles(_folder.Path));
    }

    [Fact]
    public async Task Listing_is_recursive_by_string_prefix_and_hides_the_store_bookkeeping()
    {
        var job = _store.JobFolder(Guid.NewGuid(), Guid.NewGuid());
        foreach (var name in new[] { "a.bin", "checkpoints/epoch 1.pth", "checkpoints/epoch2.pth", "run1/x", "run.txt" })
        {
            await _store.PutAsync(job.Append(name), new MemoryStream([7]), _ct);
        }

        var all = await _store.ListAsync(job, _ct).Select(i => i.Uri).ToListAsync(_ct);
        var run = await _store.ListAsync(new Uri(job, "run"), _ct).Select(i => i.Uri).ToListAsync(_ct);

        Assert.Equal(
            new[] { "a.bin", "checkpoints/epoch 1.pth", "checkpoints/epoch2.pth", "run.txt", "run1/x" }.Select(job.Append),
            all);
        Assert.Equal([job.Append("run.txt"), job.Append("run1/x")], run);
        Assert.Empty(await _store.ListAsync(job.Append("nothing-here/"), _ct).ToListAsync(_ct));
        Assert.Empty(await _store.ListAsync(_store.Root.Append("nonexistent-nvdino-folder/"), _ct).ToListAsync(_ct));
    }

    [Fact]
    public async Task A_missing_object_is_reported_with_its_uri()
    {
        var uri = _store.Root.Append("missing/model.onnx");

        var error = await Assert.ThrowsAsync<ArtifactNotFoundException>(() => _store.OpenReadAsync(uri, _ct));

        Assert.Contains(uri.ToString(), error.Message);
        Assert.IsAssignableFrom<FileNotFoundException>(error);
        Assert.Null(await _store.GetInfoAsync(uri, _ct));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => _store.GetLocalPathAsync(uri, _folder.Path, _ct));
    }

    [Fact]
    public async Task A_file_changed_behind_the_store_has_no_recorded_sha256()
    {
        var uri = _store.Root.Append("edited.txt");
        await _store.PutAsync(uri, new MemoryStream("original"u8.ToArray()), _ct);

        await File.WriteAllTextAsync(Path.Combine(_folder.Path, "edited.txt"), "edited by hand", _ct);

        var info = await _store.GetInfoAsync(uri, _ct);
        Assert.NotNull(info);
        Assert.Null(info.Sha256);
    }

    [Fact]
    public async Task Delete_removes_the_object_and_its_hash_and_accepts_a_missing_object()
    {
        var uri = _store.Root.Append("gone.bin");
        await _store.PutAsync(uri, new MemoryStream([1]), _ct);

        await _store.DeleteAsync(uri, _ct);
        await _store.DeleteAsync(uri, _ct);

        Assert.Null(await _store.GetInfoAsync(uri, _ct));
        Assert.Empty(Directory.GetFiles(_folder.Path));
    }

    [Theory]
    [InlineData("file://relative/model.bin", "names host 'relative'")]
    [InlineData("ftp://host/model.bin", "only file:// and s3://")]
    [InlineData("file://{root}folder/", "names a folder")]
    [InlineData("file://{root}.model.bin.sha256", "reserved")]
    public async Task Refuses_uris_it_cannot_store_and_says_why(string template, string reason)
    {
        var uri = template.Replace("{root}", _folder.Uri.AbsolutePath, StringComparison.Ordinal);
        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => _store.PutAsync(new Uri(uri), new MemoryStream([1]), _ct));

        Assert.Contains(uri, error.Message);
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void Job_folders_sit_under_the_root_by_pipeline_and_job_id()
    {
        var pipelineId = Guid.NewGuid();
        var jobId = Guid.NewGuid();

        var folder = _store.JobFolder(pipelineId, jobId);

        Assert.Equal(new Uri($"{_folder.Uri.AbsoluteUri}{pipelineId}/{jobId}/"), folder);
        Assert.EndsWith("/", folder.AbsoluteUri);
    }
}
