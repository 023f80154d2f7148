using System.CommandLine;
using System.Formats.Tar;
using System.IO.Compression;
using Microsoft.Extensions.Hosting;
using MassTransit;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
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
                var png = Png.Encode(48, 48, Draw(kind, random));
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

/// <summary>A minimal PNG encoder (8-bit RGB, no filtering).</summary>
public static class Png
{
    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        var c = (uint)n;
        for (var k = 0; k < 8; k++)
        {
            c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        return c;
    }).ToArray();

    public static byte[] Encode(int width, int height, Func<int, int, (byte R, byte G, byte B)> pixel)
    {
        var raw = new byte[height * (1 + width * 3)];
        for (var y = 0; y < height; y++)
        {
            var row = y * (1 + width * 3);
            for (var x = 0; x < width; x++)
            {
                var (r, g, b) = pixel(x, y);
                raw[row + 1 + x * 3] = r;
                raw[row + 2 + x * 3] = g;
                raw[row + 3 + x * 3] = b;
            }
        }
        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            zlib.Write(raw);
        }
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;
        header[9] = 2;
        Chunk(png, "IHDR", header);
        Chunk(png, "IDAT", compressed.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        Span<byte> number = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(number, data.Length);
        png.Write(number);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        png.Write(typeBytes);
        png.Write(data);
        var crc = 0xFFFFFFFFu;
        foreach (var b in typeBytes.Concat(data))
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(number, crc ^ 0xFFFFFFFFu);
        png.Write(number);
    }
}
