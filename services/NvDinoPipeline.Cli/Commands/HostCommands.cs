using System.CommandLine;
using System.Formats.Tar;
using System.IO.Compression;
using Microsoft.Extensions.Hosting;
using MassTransit;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Cli.Commands;

public static class HostCommands
{
    public static Command Serve(Option<string?> config)
    {
        var command = new Command("serve", "Host the orchestrator and every stage worker in this process (the embedded default).");
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            using var host = EmbeddedHost.Build(result.GetValue(config));
            await host.RunAsync(cancellationToken);
            return 0;
        }));
        return command;
    }

    /// <summary>Makes a small image dataset and runs the whole pipeline on it in this process.</summary>
    public static Command Demo(Option<string?> config)
    {
        var images = new Option<int>("--images") { Description = "Training images to generate.", DefaultValueFactory = _ => 96 };
        var sets = new Option<string[]>("--set") { Description = "Extra dotted-key overrides of the demo spec." };
        var command = new Command("demo", "Generate a small dataset and run the whole pipeline on it, in-process.") { images, sets };
        command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            var configFile = result.GetValue(config);
            var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss");
            string[] demoSpec = [.. DemoDataset.SpecOverrides, .. result.GetValue(sets) ?? []];
            var spec = Cli.ResolveSpec([], demoSpec);
            await using var services = CliServices.Create(configFile);
            if (services.Control.Transport != TransportKind.InMemory)
            {
                throw new CliException("demo runs on the embedded default (Messaging:Transport=InMemory); use `pipeline start` for a cluster.");
            }
            var folder = Directory.CreateTempSubdirectory("nvdino-demo-").FullName;
            var train = DemoDataset.Write(Path.Combine(folder, "images_train.tar.gz"), result.GetValue(images), seed: 1);
            var test = DemoDataset.Write(Path.Combine(folder, "images_test.tar.gz"), Math.Max(8, result.GetValue(images) / 4), seed: 2);
            // The workers read only under the artifact root (and ArtifactStore:AllowedReadRoots): the data goes there.
            var trainUri = (await services.Artifacts.PutFileAsync(services.Artifacts.Root.Append($"_demo/{stamp}/images_train.tar.gz"), train, cancellationToken)).Uri;
            var testUri = (await services.Artifacts.PutFileAsync(services.Artifacts.Root.Append($"_demo/{stamp}/images_test.tar.gz"), test, cancellationToken)).Uri;
            Directory.Delete(folder, recursive: true);
            Console.WriteLine($"demo data: {trainUri} and {testUri}");
            using var host = EmbeddedHost.Build(configFile, [new("Outbox:PollInterval", "00:00:00.100")]);
            await host.StartAsync(cancellationToken);
            try
            {
                var start = new StartPipeline
                {
                    PipelineId = NewId.NextGuid(),
                    TrainDataUri = trainUri,
                    TestDataUri = testUri,
                    Spec = spec.ToJson(),
                    Name = "demo",
                    RequestedAt = DateTimeOffset.UtcNow,
                };
                await services.Control.SendAsync(start, cancellationToken);
                Console.WriteLine($"pipeline {start.PipelineId}");
                var exit = await Cli.WaitAsync(services, start.PipelineId, cancellationToken, stopWhenNoWorker: true);
                var view = await services.Reader.ReadAsync(start.PipelineId, cancellationToken);
                foreach (var step in view?.Steps ?? [])
                {
                    foreach (var (name, uri) in step.Artifacts)
                    {
                        Console.WriteLine($"  {step.Step,-12} {name,-20} {uri}");
                    }
                }
                return exit;
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        }));
        return command;
    }
}

/// <summary>Small synthetic images (shapes and stripes in colours) packed as TAO-style image archives.</summary>
public static class DemoDataset
{
    /// <summary>A model and schedule small enough to finish in about a minute on a laptop CPU.</summary>
    public static readonly string[] SpecOverrides =
    [
        "model.backbone.teacher_type=vit_pico",
        "model.backbone.student_type=vit_pico",
        "model.backbone.patch_size=14",
        "model.backbone.img_size=28",
        "model.head.num_prototypes=256",
        "model.head.hidden_dim=128",
        "model.head.bottleneck_dim=64",
        "dataset.batch_size=16",
        "dataset.transform.global_crops_size=28",
        "dataset.transform.local_crops_size=14",
        "dataset.transform.n_local_crops=2",
        "train.num_epochs=2",
        "train.checkpoint_interval=1",
        "train.optim.warmup_epochs=0",
        "train.teacher.warmup_teacher_temp_epochs=1",
        "train.optim.freeze_last_layer_epochs=0",
        "export.input_width=28",
        "export.input_height=28",
    ];

    public static string Write(string archive, int count, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(archive)!);
        var random = new Random(seed);
        using (var file = File.Create(archive))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            for (var i = 0; i < count; i++)
            {
                var kind = i % 4;
                var png = PngEncoder.Encode(48, 48, Draw(kind, random));
                var entry = new PaxTarEntry(TarEntryType.RegularFile, $"images/class{kind}/img{i:D5}.png") { DataStream = new MemoryStream(png) };
                tar.WriteEntry(entry);
            }
        }
        return archive;
    }

    private static Func<int, int, (byte R, byte G, byte B)> Draw(int kind, Random random)
    {
        var color = ((byte)random.Next(64, 256), (byte)random.Next(64, 256), (byte)random.Next(64, 256));
        var background = ((byte)random.Next(0, 48), (byte)random.Next(0, 48), (byte)random.Next(0, 48));
        var cx = random.Next(14, 34);
        var cy = random.Next(14, 34);
        var size = random.Next(8, 14);
        var period = random.Next(4, 9);
        return kind switch
        {
            0 => (x, y) => (x - cx) * (x - cx) + (y - cy) * (y - cy) < size * size ? color : background,
            1 => (x, y) => Math.Abs(x - cx) < size && Math.Abs(y - cy) < size ? color : background,
            2 => (x, _) => x / period % 2 == 0 ? color : background,
            _ => (_, y) => y / period % 2 == 0 ? color : background,
        };
    }
}
