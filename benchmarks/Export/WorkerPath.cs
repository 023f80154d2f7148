using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Export;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;

/// <summary>
/// The export worker's own path on a real-size backbone: a safetensors backbone in a file artifact store, the
/// <see cref="ExportRunner"/> with the template spec (224×224, dynamic batch and H/W), its phases timed from its
/// progress reports.
/// </summary>
internal static class WorkerPath
{
    public static void PrintHeader()
    {
        Console.WriteLine();
        Console.WriteLine("Export worker (ExportRunner: checkpoint → TorchSharp reference → ONNX → ONNX Runtime parity → upload), 224x224, dynamic batch and H/W");
        Console.WriteLine("| backbone | params | ffn | locate+hash s | load+reference s | write ONNX s | parity s | upload s | total s | model file | max abs err | min cosine | process peak RSS GiB |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    }

    public static async Task RunAsync(string name, string folder)
    {
        var ffn = name is "vit_l" or "vit_g" ? "swiglu" : "mlp";
        var spec = SpecLoader.CreateDefault().Resolve([],
        [
            $"model.backbone.teacher_type={name}",
            $"model.backbone.student_type={name}",
            $"model.backbone.ffn_layer={ffn}",
            "export.dynamic_hw=true",
        ]);
        var expected = ExportSettings.Read(spec, PipelineStage.Training).ExpectedBackbone!;

        var root = Path.Combine(folder, "artifacts");
        Directory.CreateDirectory(root);
        using var store = new ArtifactStore(Microsoft.Extensions.Options.Options.Create(new ArtifactStoreOptions { Root = new Uri(root + "/").AbsoluteUri }));
        var (pipelineId, trainJob, exportJob) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        var backboneUri = store.JobFolder(pipelineId, trainJob).Append("teacher_backbone.safetensors");
        var local = Path.Combine(folder, "backbone.safetensors");
        using (var model = new VisionTransformer(expected))
        {
            // LayerScale as a trained model has it (the 1e-5 initialisation would make every block a near no-op).
            using (TorchSharp.torch.no_grad())
            {
                foreach (var (key, parameter) in model.named_parameters().Where(p => p.name.EndsWith(".gamma", StringComparison.Ordinal)))
                {
                    parameter.uniform_(0.05, 0.15);
                }
            }
            BackboneWeights.Save(model, local);
        }
        await store.PutFileAsync(backboneUri, local, CancellationToken.None);
        File.Delete(local);
        GC.Collect();

        var command = new ExportModel
        {
            PipelineId = pipelineId,
            JobId = exportJob,
            ParentJobId = trainJob,
            Spec = spec.ToJson(),
            OutputUri = store.JobFolder(pipelineId, exportJob),
            SourceStage = PipelineStage.Training,
            CheckpointsUri = store.JobFolder(pipelineId, trainJob),
            BackboneUri = backboneUri,
        };
        var scratch = Path.Combine(folder, "scratch");
        Directory.CreateDirectory(scratch);
        var clock = Stopwatch.StartNew();
        var marks = new List<(double Fraction, double Seconds)>();
        var context = new StageContext(command, PipelineStage.Export, spec, command.OutputUri, scratch, NullLogger.Instance,
            (progress, _, _) =>
            {
                marks.Add((progress.Fraction ?? 0, clock.Elapsed.TotalSeconds));
                return Task.CompletedTask;
            });
        var runner = new ExportRunner(store, Microsoft.Extensions.Options.Options.Create(new ExportOptions()), NullLogger<ExportRunner>.Instance);
        var result = await runner.RunAsync(command, context, CancellationToken.None);
        var total = clock.Elapsed.TotalSeconds;

        double At(double fraction) => marks.First(m => m.Fraction >= fraction).Seconds;
        var peak = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {expected.ParameterCount() / 1e6:F0}M | {ffn} | {At(0.1) - At(0):F1} | {At(0.4) - At(0.1):F1} | {At(0.6) - At(0.4):F1} | " +
            $"{At(0.8) - At(0.6):F1} | {At(1.0) - At(0.8):F1} | {total:F1} | {result.Metrics["onnx_bytes"] / 1e6:F1} MB | " +
            $"{result.Completed.MaxAbsError:G2} | {result.Completed.MinCosine:F7} | {peak:F1} |"));
    }
}
