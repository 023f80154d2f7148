using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Storage.Tests;

/// <summary>
/// Locations a spec or a message could carry to reach what it must not: other pipelines' artifacts, files outside
/// the roots, through '..', encoded dots, symbolic links, other buckets and URIs with credentials. Each is refused
/// with its rule before anything is opened; afterwards the victim's artifacts and the outside file are unchanged
/// byte for byte and nothing was written anywhere but the attacker's own folder.
/// </summary>
public sealed class HostileLocationTests : IDisposable
{
    private readonly TempDirectory _base = new("nvdino-hostile");
    private readonly HostileLayout _layout;
    private readonly ArtifactStore _store;
    private readonly Guid _victimPipeline = Guid.NewGuid();
    private readonly Guid _victimJob = Guid.NewGuid();
    private readonly Guid _attackerPipeline = Guid.NewGuid();
    private readonly Guid _attackerJob = Guid.NewGuid();
    private readonly CancellationToken _ct = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;

    public HostileLocationTests()
    {
        Directory.CreateDirectory(_base.Combine("artifacts"));
        _layout = new HostileLayout(_base.Path, "datasets");
        _store = TestStores.Create(Root, o => o.AllowedReadRoots = [_layout.ReadRoot]);
    }

    private string Root => new Uri(_base.Combine("artifacts") + "/").AbsoluteUri;

    private Uri VictimFolder => _store.JobFolder(_victimPipeline, _victimJob);

    private Uri AttackerFolder => _store.JobFolder(_attackerPipeline, _attackerJob);

    public void Dispose()
    {
        _store.Dispose();
        _base.Dispose();
    }

    private async Task<SortedDictionary<string, string>> WithVictimAsync()
    {
        await _store.PutAsync(VictimFolder.Append("model.ort.onnx"), new MemoryStream("deployed model"u8.ToArray()), _ct);
        await _store.PutAsync(VictimFolder.Append("model.json"), new MemoryStream("{\"onnx_file\":\"model.ort.onnx\"}"u8.ToArray()), _ct);
        return FolderFingerprint.Of(_base.Path);
    }

    /// <summary>Everything under the temp folder except the attacker's own job folder.</summary>
    private SortedDictionary<string, string> OutsideTheAttacker()
    {
        var attacker = Path.GetRelativePath(_base.Path, AttackerFolder.LocalPath);
        var all = FolderFingerprint.Of(_base.Path);
        foreach (var key in all.Keys.Where(k => k.StartsWith(attacker, StringComparison.Ordinal)).ToList())
        {
            all.Remove(key);
        }
        return all;
    }

    [Theory]
    [MemberData(nameof(HostileLayout.Reads), MemberType = typeof(HostileLayout))]
    public async Task A_hostile_read_is_refused_with_its_rule_before_anything_is_opened(string template, string rule)
    {
        var before = await WithVictimAsync();
        var uri = _layout.Location(template);

        List<ArtifactAccessDeniedException> refusals =
        [
            await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => _store.OpenReadAsync(uri, _ct)),
            await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => _store.GetInfoAsync(uri, _ct)),
            await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => _store.GetLocalPathAsync(uri, _base.Combine("scratch"), _ct)),
            await Assert.ThrowsAsync<ArtifactAccessDeniedException>(async () => await _store.ListAsync(uri, _ct).ToListAsync(_ct)),
        ];

        Assert.All(refusals, refusal =>
        {
            Assert.Contains(rule, refusal.Message);
            HostileLayout.AssertRevealsNothing(refusal.Message);
        });
        Assert.Equal(before, FolderFingerprint.Of(_base.Path));
    }

    [Fact]
    public async Task A_location_with_credentials_is_shown_without_them()
    {
        var refusal = await Assert.ThrowsAsync<ArtifactAccessDeniedException>(
            () => _store.OpenReadAsync(new Uri("s3://AKIAEXAMPLE:wJalrXUtnFEMI@datasets/x"), _ct));

        Assert.Equal("s3://***@datasets/x", refusal.Location);
    }

    [Fact]
    public async Task A_listing_leaves_out_links_that_lead_out_of_the_read_roots_and_never_descends_into_linked_folders()
    {
        File.WriteAllText(_base.Combine("datasets", "image.png"), "png");
        File.CreateSymbolicLink(_base.Combine("datasets", "image-link.png"), _base.Combine("datasets", "image.png"));

        var listed = await _store.ListAsync(new Uri(_base.Combine("datasets") + "/"), _ct).Select(i => Path.GetFileName(i.Uri.LocalPath)).ToListAsync(_ct);

        Assert.Equal(["image-link.png", "image.png"], listed);
    }

    public static TheoryData<string, string> HostileWrites => new()
    {
        { "{victim}model.ort.onnx", "is outside the folder of this job" },
        { "{attacker}../../{victimPipeline}/{victimJob}/model.ort.onnx", "is outside the folder of this job" },
        { "{attacker}%2e%2e/%2e%2e/{victimPipeline}/{victimJob}/model.ort.onnx", "is outside the folder of this job" },
        { "{attacker}into-victim/model.ort.onnx", "leads through a symbolic link out of the folder of this job" },
        { "file://{base}/outside/shadow", "is outside the folder of this job" },
        { "s3://artifacts/x/model.onnx", "is outside the folder of this job" },
    };

    [Theory]
    [MemberData(nameof(HostileWrites))]
    public async Task A_running_job_writes_and_deletes_only_inside_its_own_folder(string template, string rule)
    {
        await WithVictimAsync();
        Directory.CreateDirectory(AttackerFolder.LocalPath);
        Directory.CreateSymbolicLink(Path.Combine(AttackerFolder.LocalPath, "into-victim"), VictimFolder.LocalPath);
        var before = OutsideTheAttacker();
        var uri = new Uri(template
            .Replace("{victim}", VictimFolder.AbsoluteUri, StringComparison.Ordinal)
            .Replace("{attacker}", AttackerFolder.AbsoluteUri, StringComparison.Ordinal)
            .Replace("{victimPipeline}", _victimPipeline.ToString(), StringComparison.Ordinal)
            .Replace("{victimJob}", _victimJob.ToString(), StringComparison.Ordinal)
            .Replace("{base}", _base.Path, StringComparison.Ordinal));
        var local = _base.Combine("model.onnx");
        await File.WriteAllTextAsync(local, "attacker's model", _ct);

        using (_store.ConfineToJob(_attackerPipeline, _attackerJob, AttackerFolder))
        {
            List<ArtifactAccessDeniedException> refusals =
            [
                await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => _store.PutAsync(uri, new MemoryStream("overwritten"u8.ToArray()), _ct)),
                await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => _store.PutFileAsync(uri, local, _ct)),
                await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => _store.DeleteAsync(uri, _ct)),
            ];
            await _store.PutAsync(AttackerFolder.Append("own.bin"), new MemoryStream([1, 2, 3]), _ct);

            Assert.All(refusals, refusal => Assert.Contains(rule, refusal.Message));
        }

        File.Delete(local);
        Assert.Equal(before, OutsideTheAttacker());
        Assert.Equal(3, (await _store.GetInfoAsync(AttackerFolder.Append("own.bin"), _ct))!.Size);
    }

    [Fact]
    public async Task A_job_whose_output_location_is_another_jobs_folder_is_refused_before_it_runs()
    {
        var before = await WithVictimAsync();

        var refusal = Assert.Throws<ArtifactAccessDeniedException>(() => _store.ConfineToJob(_attackerPipeline, _attackerJob, VictimFolder));

        Assert.Contains($"is not the folder of job {_attackerJob} of pipeline {_attackerPipeline} ({AttackerFolder})", refusal.Message);
        Assert.Equal(before, FolderFingerprint.Of(_base.Path));
    }

    [Fact]
    public async Task A_job_folder_that_is_itself_a_link_to_another_jobs_folder_is_not_written_through()
    {
        await WithVictimAsync();
        Directory.CreateSymbolicLink(_base.Combine("artifacts", _attackerPipeline.ToString()), Path.GetDirectoryName(VictimFolder.LocalPath.TrimEnd('/'))!);
        Directory.CreateSymbolicLink(Path.Combine(Path.GetDirectoryName(VictimFolder.LocalPath.TrimEnd('/'))!, _attackerJob.ToString()), VictimFolder.LocalPath);
        var outside = FolderFingerprint.Of(_base.Combine("outside"));
        var victim = FolderFingerprint.Of(VictimFolder.LocalPath);

        using (_store.ConfineToJob(_attackerPipeline, _attackerJob, AttackerFolder))
        {
            var refusal = await Assert.ThrowsAsync<ArtifactAccessDeniedException>(
                () => _store.PutAsync(AttackerFolder.Append("model.ort.onnx"), new MemoryStream("overwritten"u8.ToArray()), _ct));

            Assert.Contains("leads through a symbolic link out of the folder of this job", refusal.Message);
        }

        Assert.Equal(victim, FolderFingerprint.Of(VictimFolder.LocalPath));
        Assert.Equal(outside, FolderFingerprint.Of(_base.Combine("outside")));
    }

    [Fact]
    public async Task Without_a_job_the_store_still_writes_only_under_its_root()
    {
        var before = await WithVictimAsync();

        var refusal = await Assert.ThrowsAsync<ArtifactAccessDeniedException>(
            () => _store.PutAsync(new Uri(_base.Combine("datasets", "planted.tar.gz")), new MemoryStream([1]), _ct));

        Assert.Contains($"is outside the artifact root {Root}", refusal.Message);
        Assert.Equal(before, FolderFingerprint.Of(_base.Path));
    }

    [Fact]
    public async Task The_confinement_reaches_tasks_the_job_starts_ends_with_it_and_lets_a_permitted_entry_through()
    {
        await WithVictimAsync();
        var cacheEntry = _store.Root.Append("_cache/staging/0123.json");
        using (_store.ConfineToJob(_attackerPipeline, _attackerJob, AttackerFolder))
        {
            await Assert.ThrowsAsync<ArtifactAccessDeniedException>(
                () => Task.Run(() => _store.PutAsync(VictimFolder.Append("model.ort.onnx"), new MemoryStream([1]), _ct), _ct));
            await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => _store.PutAsync(cacheEntry, new MemoryStream([1]), _ct));
            using (ArtifactConfinement.Permit(cacheEntry))
            {
                await _store.PutAsync(cacheEntry, new MemoryStream([1]), _ct);
                await Assert.ThrowsAsync<ArtifactAccessDeniedException>(
                    () => _store.PutAsync(_store.Root.Append("_cache/staging/other.json"), new MemoryStream([1]), _ct));
            }
        }

        await _store.PutAsync(_store.Root.Append("_cache/staging/other.json"), new MemoryStream([1]), _ct);
        Assert.NotNull(await _store.GetInfoAsync(cacheEntry, _ct));
    }

    [Fact]
    public async Task A_confined_job_on_a_bucket_cannot_reach_another_jobs_objects_and_the_server_is_never_asked()
    {
        using var store = TestStores.Create("s3://artifacts/", o => o.S3.ServiceUrl = "http://127.0.0.1:1");
        var victim = store.JobFolder(_victimPipeline, _victimJob).Append("model.ort.onnx");

        using (store.ConfineToJob(_attackerPipeline, _attackerJob, store.JobFolder(_attackerPipeline, _attackerJob)))
        {
            var write = await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => store.PutAsync(victim, new MemoryStream([1]), _ct));
            var read = await Assert.ThrowsAsync<ArtifactAccessDeniedException>(() => store.GetInfoAsync(new Uri("s3://other-bucket/x"), _ct));

            Assert.Contains("is outside the folder of this job", write.Message);
            Assert.Contains("is outside the locations this deployment reads (s3://artifacts/)", read.Message);
        }
    }
}
