using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Staging.Tests;

[CollectionDefinition(TestCollections.S3)]
public sealed class S3Collection : ICollectionFixture<S3Fixture>;

/// <summary>Staging from and into a real S3-compatible server (s3rver): archives, prefixes and the cache.</summary>
[Collection(TestCollections.S3)]
public sealed class S3StagingTests(S3Fixture s3) : IAsyncLifetime
{
    private readonly string _bucket = S3Fixture.NewBucketName("nvdino-staging");
    private IAmazonS3 _client = null!;
    private StagingTestBed _bed = null!;

    public async Task InitializeAsync()
    {
        var endpoint = s3.Endpoint;
        _client = new AmazonS3Client(new BasicAWSCredentials(endpoint.AccessKey, endpoint.SecretKey), new AmazonS3Config
        {
            ServiceURL = endpoint.ServiceUrl.ToString(),
            ForcePathStyle = true,
            AuthenticationRegion = endpoint.Region,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });
        await _client.PutBucketAsync(new PutBucketRequest { BucketName = _bucket });
        _bed = StagingTestBed.OnS3(endpoint, _bucket);
    }

    public Task DisposeAsync()
    {
        _bed.Dispose();
        _client.Dispose();
        return Task.CompletedTask;
    }

    private Uri S3(string key) => new($"s3://{_bucket}/{key}");

    [Fact]
    public async Task Stages_a_tar_gz_from_s3_into_s3_with_correct_counts_and_hashes_then_reuses_it()
    {
        var images = DatasetStagingRunnerTests.SampleImages();
        var local = DatasetStagingRunnerTests.ArchiveOf(images)
            .File("dup.png", images[3].Bytes)
            .File("notes.txt", "x"u8.ToArray())
            .WriteTarGz(Path.Combine(_bed.Inputs, "images.tar.gz"));
        var source = S3("sources/images.tar.gz");
        await _bed.SourceStore.PutFileAsync(source, local, CancellationToken.None);
        var command = _bed.Command(source);

        var staged = await _bed.StageAsync(command);

        Assert.Equal((images.Count, 1, 1, false), (staged.ImageCount, staged.DuplicateCount, staged.SkippedCount, staged.FromCache));
        Assert.Equal("s3", staged.DatasetUri.Scheme);
        Assert.StartsWith(command.OutputUri.AbsoluteUri, staged.DatasetUri.AbsoluteUri);
        var manifest = await _bed.ManifestAsync(staged);
        Assert.Equal(images.Select(i => Convert.ToHexStringLower(SHA256.HashData(i.Bytes))), manifest.Select(m => m.GetProperty("sha256").GetString()));
        using (var shards = await ShardReader.OpenAsync(_bed.Store, staged.DatasetUri, _bed.ScratchRoot, CancellationToken.None))
        {
            Assert.Equal(images.Count, shards.Count);
            Assert.Equal(ImageFiles.Pattern(images[2].Width, images[2].Height, images[2].Seed), shards.Read(2).Rgb);
        }

        var again = await _bed.StageAsync(_bed.Command(source));

        Assert.True(again.FromCache);
        Assert.Equal(staged.DatasetUri, again.DatasetUri);
    }

    [Fact]
    public async Task Stages_every_image_under_an_s3_prefix_with_nested_keys()
    {
        var images = DatasetStagingRunnerTests.SampleImages();
        foreach (var (path, bytes, _, _, _) in images)
        {
            await _bed.SourceStore.PutAsync(S3($"folder/{path}"), new MemoryStream(bytes), CancellationToken.None);
        }
        await _bed.SourceStore.PutAsync(S3("folder/readme.txt"), new MemoryStream("hello"u8.ToArray()), CancellationToken.None);
        await _bed.SourceStore.PutAsync(S3("folder-other/not-mine.png"), new MemoryStream(ImageFiles.Png(5, 5, seed: 1)), CancellationToken.None);

        var staged = await _bed.StageAsync(_bed.Command(S3("folder")));

        Assert.Equal(images.Count, staged.ImageCount);
        Assert.Equal(1, staged.SkippedCount);
        var manifest = await _bed.ManifestAsync(staged);
        Assert.Equal(images.Select(i => i.Path).Order(StringComparer.Ordinal), manifest.Select(m => m.GetProperty("path").GetString()));

        var again = await _bed.StageAsync(_bed.Command(S3("folder/")));
        Assert.True(again.FromCache);
    }

    [Fact]
    public async Task An_archive_uploaded_by_another_tool_is_recognised_again_by_its_etag()
    {
        var images = DatasetStagingRunnerTests.SampleImages();
        var local = DatasetStagingRunnerTests.ArchiveOf(images).WriteZip(Path.Combine(_bed.Inputs, "images.zip"));
        await _client.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = "raw/images.zip", FilePath = local, UseChunkEncoding = false });

        var first = await _bed.StageAsync(_bed.Command(S3("raw/images.zip")));
        var second = await _bed.StageAsync(_bed.Command(S3("raw/images.zip")));

        Assert.Equal(images.Count, first.ImageCount);
        Assert.False(first.FromCache);
        Assert.True(second.FromCache);
        Assert.Empty(Directory.EnumerateFiles(_bed.ScratchRoot, "*.zip", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_missing_key_fails_the_job_naming_it()
    {
        var failure = await _bed.StageFailsAsync(_bed.Command(S3("nothing/here.tar.gz")));

        Assert.Contains($"s3://{_bucket}/nothing/here.tar.gz", failure.Message);
        Assert.Contains("does not exist", failure.Message);
    }
}
