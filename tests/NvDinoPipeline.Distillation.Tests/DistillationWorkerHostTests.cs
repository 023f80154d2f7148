using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Distillation.Tests;

public sealed class DistillationWorkerHostTests
{
    [Fact]
    public async Task A_distill_model_command_sent_to_the_worker_host_ends_as_a_done_job_with_both_student_backbones()
    {
        using var folder = new TempDirectory("nvdino-distillation-host");
        using var host = EmbeddedHosts.Build(EmbeddedHosts.Settings(folder.Path, new Dictionary<string, string?>
        {
            ["Distillation:ProgressInterval"] = "00:00:00.100",
            ["Distillation:Device"] = "cpu",
        }), pipeline => pipeline.AddDistillationWorker());
        await host.StartAsync();
        try
        {
            var store = host.Services.GetRequiredService<IArtifactStore>();
            var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(8));
            var checkpoint = TinyDistillation.TrainedCheckpoint(folder.Combine("training"), TinyDistillation.Teacher with { EmbedDim = 192, NumHeads = 3, Depth = 12 });
            var trainingJob = store.JobFolder(Guid.NewGuid(), Guid.NewGuid());
            var teacherUri = trainingJob.Append("checkpoints/" + Path.GetFileName(checkpoint));
            await store.PutFileAsync(teacherUri, checkpoint, CancellationToken.None);

            var pipelineId = Guid.NewGuid();
            var jobId = Guid.NewGuid();
            var endpoint = await host.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Distillation).Queue));
            await endpoint.Send(new DistillModel
            {
                PipelineId = pipelineId,
                JobId = jobId,
                Spec = TinyDistillation.Spec("vit_t", "vit_pico", "train.num_epochs=1").ToJson(),
                OutputUri = store.JobFolder(pipelineId, jobId),
                TeacherCheckpointUri = teacherUri,
                DatasetUri = dataset,
                ManifestUri = new Uri(dataset, "../manifest.jsonl"),
            });

            var job = await host.WaitForJobAsync(jobId, TimeSpan.FromSeconds(60));
            Assert.True(job?.Status == JobStatus.Done, $"job status {job?.Status}: {job?.ErrorReason}");
            Assert.Contains("student_ema_backbone", job!.Artifacts);
            Assert.Matches(@"^vit_t distilled into vit_pico: 1 epochs \(\d+ steps\), final loss \d+\.\d{4}$", job.ProgressMessage);
            Assert.Contains(nameof(DistillationCompleted.StudentEmaBackboneUri), job.Completion);
            Assert.NotNull(await store.GetInfoAsync(store.JobFolder(pipelineId, jobId).Append(DistillationTrainer.StudentBackboneFileName), CancellationToken.None));
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
