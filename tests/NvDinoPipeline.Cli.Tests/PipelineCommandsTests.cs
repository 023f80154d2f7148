using System.Diagnostics;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Cli.Tests;

public sealed class PipelineCommandsTests : IDisposable
{
    private readonly TempDirectory _home = new("nvdino-cli");
    private readonly NvdinoProcess _nvdino;

    public PipelineCommandsTests()
    {
        _nvdino = new NvdinoProcess(_home.Path, new Dictionary<string, string> { ["ArtifactStore__AllowedReadRoots__0"] = _home.Combine("images") });
        Directory.CreateDirectory(_home.Combine("images"));
        for (var i = 0; i < 32; i++)
        {
            File.WriteAllBytes(_home.Combine("images", $"img{i}.png"), NvDinoPipeline.Datasets.Images.PngEncoder.Encode(28, 28, (x, y) => ((byte)(x * i), (byte)(y * 9), (byte)(i * 7))));
        }
    }

    public void Dispose() => _home.Dispose();

    [Fact]
    public async Task Start_with_a_bad_spec_names_each_key_and_what_is_allowed_and_sends_nothing()
    {
        var result = await _nvdino.RunAsync("pipeline", "start", "--train", _home.Combine("images"),
            "--set", "train.num_epoch=3", "--set", "train.num_epochs=abc", "--set", "pipeline.deploy.target=tensorflow");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("train.num_epoch: unknown key; did you mean 'train.num_epochs'?", result.Error);
        Assert.Contains("train.num_epochs: 'abc' is not an integer", result.Error);
        Assert.Contains("pipeline.deploy.target", result.Error);
        Assert.Contains("onnxruntime", result.Error);
        Assert.Equal("", result.Output);
        Assert.Equal(0, await CountAsync("outbox"));
        Assert.Equal(0, await CountAsync("pipelines"));
    }

    [Fact]
    public async Task Start_with_only_spec_overrides_takes_the_data_from_the_spec_keys()
    {
        var images = new Uri(_home.Combine("images")).AbsoluteUri;

        var inline = await _nvdino.RunAsync("pipeline", "start", "--spec-overrides",
            JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["train.num_epochs"] = 1, ["train.optim.warmup_epochs"] = 0, ["dataset.train_dataset.images_dir"] = images,
            }));
        var file = _home.Combine("overrides.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(new { dataset = new { train_dataset = new { images_dir = images } }, train = new { num_epochs = 1, optim = new { warmup_epochs = 0 } } }));
        var fromFile = await _nvdino.RunAsync("pipeline", "start", "--spec-overrides", file);

        Assert.Equal((0, 0), (inline.ExitCode, fromFile.ExitCode));
        Assert.True(Guid.TryParse(inline.Output.Trim(), out _), inline.Output + inline.Error);
        Assert.True(Guid.TryParse(fromFile.Output.Trim(), out _), fromFile.Output + fromFile.Error);
        Assert.True(await CountAsync("outbox") >= 2);
    }

    [Fact]
    public async Task A_data_flag_and_its_spec_key_naming_different_data_are_refused_naming_both()
    {
        Directory.CreateDirectory(_home.Combine("other"));

        var result = await _nvdino.RunAsync("pipeline", "start", "--train", _home.Combine("images"),
            "--set", $"dataset.train_dataset.images_dir={_home.Combine("other")}");
        var none = await _nvdino.RunAsync("pipeline", "start", "--set", "train.num_epochs=20");
        var sentBefore = await CountAsync("outbox");
        var same = await _nvdino.RunAsync("pipeline", "start", "--train", _home.Combine("images"),
            "--set", $"dataset.train_dataset.images_dir={new Uri(_home.Combine("images")).AbsoluteUri}");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--train", result.Error);
        Assert.Contains("dataset.train_dataset.images_dir", result.Error);
        Assert.Contains("name different data", result.Error);
        Assert.Equal(0, same.ExitCode);
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("no training data: give --train or dataset.train_dataset.images_dir", none.Error);
        Assert.Equal(0, sentBefore);
        Assert.True(await CountAsync("outbox") >= 1);
    }

    [Theory]
    [InlineData("train.precision=16-mixed", "train.precision: 'fp16' is not supported")]
    [InlineData("dataset.transform.n_global_crops=4", "dataset.transform.n_global_crops: 4 is not an allowed value")]
    [InlineData("model.backbone.interpolate_antialias=true", "model.backbone.interpolate_antialias: true is not valid")]
    [InlineData("train.num_nodes=2", "train.num_nodes: 2 is out of range")]
    [InlineData("train.validation_interval=5", "train.validation_interval")]
    public async Task Start_refuses_what_a_worker_would_fail_on_later_and_sends_nothing(string setting, string expected)
    {
        var result = await _nvdino.RunAsync("pipeline", "start", "--train", _home.Combine("images"), "--set", setting);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, result.Error);
        Assert.Equal(0, await CountAsync("outbox"));
    }

    [Fact]
    public async Task Start_names_a_missing_data_path()
    {
        var missing = _home.Combine("nowhere.tar.gz");

        var result = await _nvdino.RunAsync("pipeline", "start", "--train", missing);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"--train: '{missing}' does not exist", result.Error);
    }

    [Fact]
    public async Task Start_refuses_data_outside_the_read_roots_without_quoting_it_and_sends_nothing()
    {
        Directory.CreateDirectory(_home.Combine("outside"));
        var secret = _home.Combine("outside", "shadow");
        await File.WriteAllTextAsync(secret, "root:$6$TOP-SECRET-HASH:19000:0:99999:7:::");

        var etc = await _nvdino.RunAsync("pipeline", "start", "--train", "/etc/shadow");
        var local = await _nvdino.RunAsync("pipeline", "start", "--train", _home.Combine("images"), "--test", secret);

        Assert.Equal((2, 2), (etc.ExitCode, local.ExitCode));
        Assert.Contains("--train: 'file:///etc/shadow' is outside the locations this deployment reads", etc.Error);
        Assert.Contains("ArtifactStore:AllowedReadRoots", etc.Error);
        Assert.Contains($"--test: '{new Uri(secret).AbsoluteUri}' is outside the locations this deployment reads", local.Error);
        Assert.DoesNotContain("TOP-SECRET", local.Error);
        Assert.DoesNotContain(Convert.ToHexString("root:$6$"u8), local.Error);
        Assert.Equal("", etc.Output + local.Output);
        Assert.Equal(0, await CountAsync("outbox"));
    }

    [Fact]
    public async Task Start_refuses_spec_locations_outside_the_job_folder_or_the_read_roots_naming_each_key()
    {
        var victim = _home.Combine("artifacts", Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "model.ort.onnx");
        Directory.CreateDirectory(_home.Combine("outside"));
        var weights = _home.Combine("outside", "weights.pth");
        await File.WriteAllBytesAsync(weights, [1, 2, 3]);

        var output = await _nvdino.RunAsync("pipeline", "start", "--train", _home.Combine("images"), "--set", $"export.onnx_file={new Uri(victim).AbsoluteUri}");
        var input = await _nvdino.RunAsync("pipeline", "start", "--train", _home.Combine("images"), "--set", $"train.pretrained_model_path={weights}");

        Assert.Equal((2, 2), (output.ExitCode, input.ExitCode));
        Assert.Contains("export.onnx_file: 'file://", output.Error);
        Assert.Contains("is outside the job's folder", output.Error);
        Assert.Contains($"train.pretrained_model_path: '{new Uri(weights).AbsoluteUri}' is outside the locations this deployment reads", input.Error);
        Assert.False(File.Exists(victim));
        Assert.Equal(0, await CountAsync("outbox"));
    }

    [Fact]
    public async Task Start_refuses_an_alias_bomb_spec_naming_the_file_and_the_limit()
    {
        var bomb = _home.Combine("bomb.yaml");
        string[] lines =
        [
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]",
            .. "bcdefghi".Select((name, i) => $"{name}: &{name} [{string.Join(',', Enumerable.Repeat($"*{"abcdefgh"[i]}", 9))}]"),
        ];
        await File.WriteAllTextAsync(bomb, string.Join('\n', lines));

        var result = await _nvdino.RunAsync("pipeline", "start", "--train", _home.Combine("images"), "--spec", bomb);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"{bomb} holds more than 100000 values once every alias is expanded", result.Error);
        Assert.Equal(0, await CountAsync("outbox"));
    }

    [Fact]
    public async Task A_pipeline_started_from_the_command_line_runs_on_the_embedded_host_and_can_be_canceled()
    {
        using var serve = _nvdino.Start("serve");
        try
        {
            // A long training run, so that cancel meets it running.
            string[] spec = [.. Commands.DemoDataset.SpecOverrides.SelectMany(o => new[] { "--set", o }), "--set", "train.num_epochs=1000"];
            var started = await _nvdino.RunAsync(["pipeline", "start", "--train", _home.Combine("images"), "--name", "cli-test", .. spec]);
            Assert.Equal(0, started.ExitCode);
            var id = Guid.Parse(started.Output.Trim());

            var status = await WaitForStatusAsync(id, json => json.GetProperty("steps")[1].GetProperty("status").GetString() == "Running");
            Assert.Equal("cli-test", status.GetProperty("name").GetString());
            Assert.Equal("Running", status.GetProperty("status").GetString());
            Assert.Equal("stage-train", status.GetProperty("steps")[0].GetProperty("step").GetString());
            Assert.Equal("Done", status.GetProperty("steps")[0].GetProperty("status").GetString());
            Assert.Equal("train", status.GetProperty("steps")[1].GetProperty("step").GetString());

            var list = await _nvdino.RunAsync("pipeline", "list");
            Assert.Contains(id.ToString(), list.Output);

            var cancel = await _nvdino.RunAsync("pipeline", "cancel", id.ToString(), "--reason", "test over");
            Assert.Equal(0, cancel.ExitCode);
            var canceled = await WaitForStatusAsync(id, json => json.GetProperty("status").GetString() == "Canceled"
                && json.GetProperty("steps")[1].GetProperty("status").GetString() == "Canceled");
            Assert.Equal("test over", canceled.GetProperty("error").GetString());

            var again = await _nvdino.RunAsync("pipeline", "cancel", id.ToString());
            Assert.Equal(2, again.ExitCode);
            Assert.Contains("already Canceled", again.Error);
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Without_a_host_wait_hosts_the_request_in_process_for_a_single_action_as_for_a_start()
    {
        string[] spec = [.. Commands.DemoDataset.SpecOverrides.SelectMany(o => new[] { "--set", o }), "--set", "pipeline.stages.inference=false"];
        var started = await _nvdino.RunAsync(["pipeline", "start", "--train", _home.Combine("images"), "--wait", .. spec]);
        Assert.True(started.ExitCode == 0, started.Output + started.Error);
        var id = Guid.Parse(started.Output.Split('\n')[0].Trim());
        var status = await WaitForStatusAsync(id, json => json.GetProperty("status").GetString() == "Done");
        var train = status.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("step").GetString() == "train").GetProperty("job_id").GetString()!;

        // Still no host: --wait runs one in this process for the action's pipeline, as `pipeline start --wait` does.
        var export = await _nvdino.RunAsync("job", "run", "export", "--parent", train, "--set", "export.opset_version=17", "--wait");
        Assert.True(export.ExitCode == 0, export.Output + export.Error);
        Assert.Contains("reused from pipeline " + id, export.Output);
        Assert.Matches(@"export\s+Done", export.Output);

        // Without --wait the request waits in the state database, and the CLI says for what.
        var queued = await _nvdino.RunAsync("job", "run", "export", "--parent", train);
        Assert.Equal(0, queued.ExitCode);
        Assert.Contains("no embedded host is running; the pipeline runs when `nvdino serve` does", queued.Error);
    }

    [Fact]
    public async Task With_a_host_running_the_CLI_goes_through_its_API_which_refuses_bad_input_and_runs_single_actions()
    {
        using var serve = _nvdino.Start("serve");
        try
        {
            string[] spec = [.. Commands.DemoDataset.SpecOverrides.SelectMany(o => new[] { "--set", o })];
            var started = await _nvdino.RunAsync(["pipeline", "start", "--train", _home.Combine("images"), "--wait", .. spec]);
            Assert.True(started.ExitCode == 0, started.Output + started.Error);
            var id = Guid.Parse(started.Output.Split('\n')[0].Trim());
            var status = await WaitForStatusAsync(id, json => json.GetProperty("status").GetString() == "Done");
            var train = status.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("step").GetString() == "train").GetProperty("job_id").GetString()!;

            // Refused by the host's API, naming the key, before anything is started (the database inbox would start it and fail it).
            var refused = await _nvdino.RunAsync("job", "run", "export", "--parent", train, "--set", "export.opset=17");
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("The job was not started", refused.Error);
            Assert.Contains("export.opset: unknown key", refused.Error);
            var stage = status.GetProperty("steps")[0].GetProperty("job_id").GetString()!;
            var wrongParent = await _nvdino.RunAsync("job", "run", "export", "--parent", stage);
            Assert.Equal(2, wrongParent.ExitCode);
            Assert.Contains("parent_job_id", wrongParent.Error);

            var export = await _nvdino.RunAsync("job", "run", "export", "--parent", train, "--set", "export.opset_version=17", "--wait");
            Assert.True(export.ExitCode == 0, export.Output + export.Error);
            Assert.Contains("reused from pipeline " + id, export.Output);

            var logs = await _nvdino.RunAsync("job", "logs", train);
            Assert.Equal(0, logs.ExitCode);
            Assert.Contains("Epoch 1/", logs.Output);
            var artifacts = await _nvdino.RunAsync("job", "artifacts", train);
            Assert.Contains("metrics.jsonl", artifacts.Output);
            var copy = _home.Combine("metrics-copy.jsonl");
            var download = await _nvdino.RunAsync("job", "download", train, "metrics.jsonl", "--out", copy);
            Assert.Equal(0, download.ExitCode);
            Assert.Contains("\"epoch\"", File.ReadAllLines(copy)[0]);
            var escape = await _nvdino.RunAsync("job", "download", train, "../../state.db", "--out", _home.Combine("stolen.db"));
            Assert.Equal(2, escape.ExitCode);
            Assert.False(File.Exists(_home.Combine("stolen.db")));
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
        }
    }

    private async Task<JsonElement> WaitForStatusAsync(Guid id, Func<JsonElement, bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        var last = "";
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            var result = await _nvdino.RunAsync("pipeline", "status", id.ToString(), "--json");
            last = result.Output + result.Error;
            if (result.ExitCode == 0)
            {
                var json = JsonDocument.Parse(result.Output).RootElement;
                if (condition(json))
                {
                    return json;
                }
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"Status never reached the expected state; last: {last}");
    }

    private async Task<long> CountAsync(string table)
    {
        var database = _home.Combine("state.db");
        if (!File.Exists(database))
        {
            return 0;
        }
        await using var connection = new SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table}";
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
