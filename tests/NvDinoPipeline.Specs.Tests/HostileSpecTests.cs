using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace NvDinoPipeline.Specs.Tests;

/// <summary>
/// Specs written to exhaust the machine or to reach what they must not: alias bombs, deep nesting, huge documents,
/// output locations outside the job's folder, inputs that climb, carry credentials or use other schemes. Each is
/// refused, naming the key or the document and the rule.
/// </summary>
public sealed class HostileSpecTests(ITestOutputHelper output) : IDisposable
{
    private const long MemoryBudget = 100L * 1024 * 1024;
    private static readonly TimeSpan TimeBudget = TimeSpan.FromSeconds(1);

    private static readonly SpecLoader Loader = SpecFiles.Loader;
    private readonly SpecFiles files = new();

    public void Dispose() => files.Dispose();

    /// <summary>Nine lines of nine aliases each: about 10^8 values once expanded, 400 bytes as written.</summary>
    public const string AliasBomb = """
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
        """;

    /// <summary>The same with mappings, which the spec merge would walk key by key.</summary>
    public const string KeyBomb = """
        train: &a {k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1, k8: 1, k9: 1}
        model: &b {a1: *a, a2: *a, a3: *a, a4: *a, a5: *a, a6: *a, a7: *a, a8: *a, a9: *a}
        dataset: &c {b1: *b, b2: *b, b3: *b, b4: *b, b5: *b, b6: *b, b7: *b, b8: *b, b9: *b}
        export: &d {c1: *c, c2: *c, c3: *c, c4: *c, c5: *c, c6: *c, c7: *c, c8: *c, c9: *c}
        inference: {d1: *d, d2: *d, d3: *d, d4: *d, d5: *d, d6: *d, d7: *d, d8: *d, d9: *d}
        """;

    public static TheoryData<string, string> Bombs => new()
    {
        { AliasBomb, "holds more than 100000 values once every alias is expanded" },
        { KeyBomb, "holds more than 2000 keys once every alias is expanded" },
    };

    [Theory]
    [MemberData(nameof(Bombs))]
    public void An_alias_bomb_is_refused_within_a_second_and_100_MB(string yaml, string rule)
    {
        var path = files.Write("bomb.yaml", yaml);
        Assert.True(new FileInfo(path).Length < 500);

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve([path], []));
        var elapsed = clock.Elapsed;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        output.WriteLine($"{new FileInfo(path).Length} bytes refused in {elapsed.TotalMilliseconds:F1} ms, {allocated / 1024.0 / 1024:F2} MB allocated");
        var error = Assert.Single(exception.Errors);
        Assert.StartsWith($"{path} {rule}", error.Message);
        Assert.True(elapsed < TimeBudget, $"refused after {elapsed.TotalMilliseconds:F0} ms");
        Assert.True(allocated < MemoryBudget, $"allocated {allocated / 1024 / 1024} MB to refuse it");
    }

    [Fact]
    public void An_alias_bomb_in_a_set_value_is_refused_naming_the_key()
    {
        var nested = "{a: &a [1,1,1,1,1,1,1,1,1,1], b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], "
            + "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], f: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]}";

        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve([], [$"train.optim.lr={nested}"]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("train.optim.lr", error.Key);
        Assert.Contains("holds more than 100000 values once every alias is expanded", error.Message);
    }

    [Fact]
    public void Deep_nesting_is_refused_before_it_is_read_to_the_end()
    {
        var path = files.Write("deep.yaml", "train: " + new string('[', 200_000) + new string(']', 200_000) + "\n");

        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve([path], []));

        Assert.Contains($"{path} nests lists and mappings more than 32 levels deep", Assert.Single(exception.Errors).Message);
    }

    [Fact]
    public void A_document_over_1_MiB_is_refused_without_being_read_whole()
    {
        var path = files.Write("huge.yaml", "train:\n  num_epochs: 3\n" + new string('#', 3 * 1024 * 1024) + "\n");

        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve([path], []));

        Assert.Contains($"{path} is longer than 1048576 characters (1 MiB)", Assert.Single(exception.Errors).Message);
    }

    [Fact]
    public void Too_many_keys_and_too_many_aliases_are_refused()
    {
        var keys = new StringBuilder("train:\n");
        for (var i = 0; i < 2_100; i++)
        {
            keys.Append("  k").Append(i).Append(": 1\n");
        }
        var aliases = new StringBuilder("train:\n  num_epochs: &n 3\n  list: [");
        aliases.AppendJoin(", ", Enumerable.Repeat("*n", 101)).Append("]\n");

        var manyKeys = Assert.Throws<SpecValidationException>(() => Loader.Resolve([files.Write("keys.yaml", keys.ToString())], []));
        var manyAliases = Assert.Throws<SpecValidationException>(() => Loader.Resolve([files.Write("aliases.yaml", aliases.ToString())], []));

        Assert.Contains("holds more than 2000 keys", Assert.Single(manyKeys.Errors).Message);
        Assert.Contains("uses more than 100 aliases", Assert.Single(manyAliases.Errors).Message);
    }

    [Fact]
    public void Aliases_within_the_limits_still_work()
    {
        var path = files.Write("aliases.yaml", """
            train:
              num_epochs: &epochs 20
            distill:
              num_epochs: *epochs
            """);

        var spec = Loader.Resolve([path], []);

        Assert.Equal((20, 20), (spec.Get<int>("train.num_epochs"), spec.Get<int>("distill.num_epochs")));
    }

    [Theory]
    [InlineData("export.onnx_file=file:///var/lib/nvdino/artifacts/victim-pipeline/victim-job/model.ort.onnx", "export.onnx_file", "is outside the job's folder")]
    [InlineData("export.onnx_file=/srv/models/model.onnx", "export.onnx_file", "is outside the job's folder")]
    [InlineData("export.onnx_file=s3://models/model.onnx", "export.onnx_file", "is outside the job's folder")]
    [InlineData("export.onnx_file=../victim-job/model.onnx", "export.onnx_file", "has a '.' or '..' segment")]
    [InlineData("export.onnx_file=deploy/%2e%2e/%2e%2e/model.onnx", "export.onnx_file", "has a '.' or '..' segment (perhaps written %2e%2e)")]
    [InlineData("export.onnx_file=deploy//model.onnx", "export.onnx_file", "has an empty segment")]
    [InlineData("gen_trt_engine.trt_engine=/var/lib/nvdino/artifacts/victim/model.engine", "gen_trt_engine.trt_engine", "is outside the job's folder")]
    [InlineData("train.pretrained_model_path=/data/weights/../../etc/shadow", "train.pretrained_model_path", "has a '.' or '..' segment")]
    [InlineData("train.pretrained_model_path=file:///data/%2E%2E/etc/shadow", "train.pretrained_model_path", "has a '.' or '..' segment")]
    [InlineData("train.resume_training_checkpoint_path=https://example.com/ckpt.pth", "train.resume_training_checkpoint_path", "has scheme 'https'")]
    [InlineData("distill.teacher_checkpoint=s3://weights/a/../b/teacher.ckpt", "distill.teacher_checkpoint", "has a '.' or '..' segment")]
    [InlineData("gen_trt_engine.tensorrt.calibration.cal_image_dir=[\"/data/cal\", \"/data/cal/../../root\"]", "gen_trt_engine.tensorrt.calibration.cal_image_dir", "has a '.' or '..' segment")]
    [InlineData("gen_trt_engine.timing_cache=file:///caches/a.cache?x=1", "gen_trt_engine.timing_cache", "has a query or fragment")]
    public void A_location_that_leaves_its_place_is_refused_naming_the_key(string set, string key, string rule)
    {
        var exception = Assert.Throws<SpecValidationException>(() => Loader.Resolve([], [set]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal(key, error.Key);
        Assert.Contains(rule, error.Message);
    }

    [Fact]
    public void A_location_with_credentials_is_refused_without_repeating_them()
    {
        var exception = Assert.Throws<SpecValidationException>(
            () => Loader.Resolve([], ["train.pretrained_model_path=s3://AKIAEXAMPLE:wJalrXUtnFEMI@weights/vit_l.pth"]));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("train.pretrained_model_path", error.Key);
        Assert.Contains("'s3://***@weights/vit_l.pth' carries a user name or password", error.Message);
        Assert.DoesNotContain("wJalrXUtnFEMI", exception.Message);
        Assert.DoesNotContain("AKIAEXAMPLE", exception.Message);
    }

    [Fact]
    public void Outputs_inside_the_job_folder_and_inputs_anywhere_pass_and_the_inputs_are_listed_for_the_client_to_check()
    {
        var spec = Loader.Resolve([],
        [
            "export.onnx_file=deploy/nvdino_vitl.onnx",
            "gen_trt_engine.trt_engine=engines/vitl.engine",
            "train.pretrained_model_path=/data/weights/vit_l.pth",
            "distill.teacher_checkpoint=epoch_003.ckpt",
            "gen_trt_engine.tensorrt.calibration.cal_image_dir=[\"s3://datasets/cal/\", \"/data/cal\"]",
        ]);

        Assert.Equal("deploy/nvdino_vitl.onnx", spec.Get<string>("export.onnx_file"));
        Assert.Equal(
            [
                ("train.pretrained_model_path", "/data/weights/vit_l.pth"),
                ("distill.teacher_checkpoint", "epoch_003.ckpt"),
                ("export.checkpoint", "latest"),
                ("gen_trt_engine.tensorrt.calibration.cal_image_dir", "s3://datasets/cal/"),
                ("gen_trt_engine.tensorrt.calibration.cal_image_dir", "/data/cal"),
            ],
            Loader.InputLocations(spec));
    }
}
