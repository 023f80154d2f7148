using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Training.Tests;

public sealed class TrainingWorkerHostTests
{
    [Fact]
    public async Task A_train_model_command_sent_to_the_worker_host_ends_as_a_done_job_with_its_artifacts()
    {
        using var folder = new TempDirectory("nvdino-training-host");
        using var host = EmbeddedHosts.Build(EmbeddedHosts.Settings(folder.Path, new Dictionary<string, string?>
        {
            ["Training:ProgressInterval"] = "00:00:00.100",
            ["Training:Device"] = "cpu",
        }), pipeline => pipeline.AddTrainingWorker());
        await host.StartAsync();
        try
        {
            var store = host.Services.GetRequiredService<IArtifactStore>();
            var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(8));
            var pipelineId = Guid.NewGuid();
            var jobId = Guid.NewGuid();
            var endpoint = await host.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Training).Queue));
            await endpoint.Send(new TrainModel
            {
                PipelineId = pipelineId,
                JobId = jobId,
                Spec = TinyTraining.Spec("train.num_epochs=1").ToJson(),
                OutputUri = store.JobFolder(pipelineId, jobId),
                DatasetUri = dataset,
                ManifestUri = new Uri(dataset, "../manifest.jsonl"),
            });

            var job = await host.WaitForJobAsync(jobId, TimeSpan.FromSeconds(60));
            Assert.True(job?.Status == JobStatus.Done, $"job status {job?.Status}: {job?.ErrorReason}");
            Assert.Contains("teacher_backbone", job!.Artifacts);
            // A finished job's status line is its result, not its last progress report.
            Assert.Matches(@"^1 epochs \(2 steps\) in (fp32|bf16), final loss \d+\.\d{4}$", job.ProgressMessage);
            Assert.Contains(nameof(TrainingCompleted.TeacherBackboneUri), job.Completion);
            Assert.NotNull(await store.GetInfoAsync(store.JobFolder(pipelineId, jobId).Append("checkpoints/epoch_001.ckpt"), CancellationToken.None));
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
