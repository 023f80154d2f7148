using System.Collections.Concurrent;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Export.Tests.Support;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Export.Tests;

/// <summary>The export worker as a service hosts it: an <see cref="ExportModel"/> on its queue, a published outcome.</summary>
public sealed class ExportWorkerTests
{
    [Fact]
    public async Task Export_command_on_the_queue_publishes_the_exported_model()
    {
        using var temp = new TempDirectory("nvdino-export-worker");
        using var host = BuildHost(temp);
        await host.StartAsync();
        try
        {
            var command = await ExportCommandAsync(host, storeBackbone: true);

            var outcome = await SendAndWaitAsync(host, command);

            var exported = Assert.IsType<ModelExported>(outcome);
            Assert.Equal(command.ParentJobId, exported.ParentJobId);
            Assert.Equal(new Uri(command.OutputUri, "model.onnx"), exported.OnnxModelUri);
            Assert.True(File.Exists(exported.OnnxModelUri.LocalPath));
            Assert.InRange(exported.MaxAbsError, 0, 1e-4);
            Assert.Equal(exported.MaxAbsError, ExportTestBed.Metadata(exported).Parity!.MaxAbsError);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Missing_checkpoint_fails_the_job_with_a_reason_naming_the_file()
    {
        using var temp = new TempDirectory("nvdino-export-worker");
        using var host = BuildHost(temp);
        await host.StartAsync();
        try
        {
            var command = await ExportCommandAsync(host, storeBackbone: false);

            var outcome = await SendAndWaitAsync(host, command);

            var failed = Assert.IsType<StageFailed>(outcome);
            Assert.Equal(PipelineStage.Export, failed.Stage);
            Assert.Equal($"Checkpoint '{command.BackboneUri}' (export.checkpoint = latest) does not exist.", failed.Reason);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public void Export_options_out_of_range_are_rejected_naming_the_setting()
    {
        using var temp = new TempDirectory("nvdino-export-worker");
        using var host = BuildHost(temp, new Dictionary<string, string?> { ["Export:MinCosine"] = "1.5" });

        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<ExportOptions>>().Value);

        Assert.Contains("MinCosine", error.Message);
    }

    private static IHost BuildHost(TempDirectory temp, IDictionary<string, string?>? extra = null)
    {
        var settings = EmbeddedHosts.Settings(temp.Path, new Dictionary<string, string?> { ["Export:OnnxRuntimeThreads"] = "1" });
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }
        return EmbeddedHosts.Build(settings, pipeline => pipeline.AddExportWorker().AddBus(bus => bus.AddConsumer<OutcomeConsumer>()),
            services => services.AddSingleton<Outcomes>());
    }

    private static async Task<ExportModel> ExportCommandAsync(IHost host, bool storeBackbone)
    {
        var store = host.Services.GetRequiredService<IArtifactStore>();
        var (pipelineId, trainingJob, exportJob) = (NewId.NextGuid(), NewId.NextGuid(), NewId.NextGuid());
        var trainingFolder = store.JobFolder(pipelineId, trainingJob);
        var backbone = trainingFolder.Append("teacher_backbone.safetensors");
        var config = TestBackbones.Pico(imgSize: 28);
        if (storeBackbone)
        {
            using var model = TestBackbones.Create(config, seed: 4);
            var local = Path.Combine(Path.GetTempPath(), $"nvdino-export-{Guid.NewGuid():N}.safetensors");
            NvDinoPipeline.Model.Weights.BackboneWeights.Save(model, local);
            await store.PutFileAsync(backbone, local, CancellationToken.None);
            File.Delete(local);
        }
        return new ExportModel
        {
            PipelineId = pipelineId,
            JobId = exportJob,
            ParentJobId = trainingJob,
            Spec = ExportTestBed.Spec(config).ToJson(),
            OutputUri = store.JobFolder(pipelineId, exportJob),
            SourceStage = PipelineStage.Training,
            CheckpointsUri = trainingFolder,
            BackboneUri = backbone,
        };
    }

    private static async Task<IStageMessage> SendAndWaitAsync(IHost host, ExportModel command)
    {
        var outcome = host.Services.GetRequiredService<Outcomes>().For(command.JobId);
        var endpoint = await host.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(StageCatalog.For(PipelineStage.Export).Queue));
        await endpoint.Send(command);
        return await outcome.WaitAsync(TimeSpan.FromSeconds(60));
    }

    public sealed class Outcomes
    {
        private readonly ConcurrentDictionary<Guid, TaskCompletionSource<IStageMessage>> _jobs = new();

        public Task<IStageMessage> For(Guid jobId) => Source(jobId).Task;

        public void Record(IStageMessage message) => Source(message.JobId).TrySetResult(message);

        private TaskCompletionSource<IStageMessage> Source(Guid jobId) =>
            _jobs.GetOrAdd(jobId, _ => new TaskCompletionSource<IStageMessage>(TaskCreationOptions.RunContinuationsAsynchronously));
    }

    public sealed class OutcomeConsumer(Outcomes outcomes) : IConsumer<ModelExported>, IConsumer<StageFailed>
    {
        public Task Consume(ConsumeContext<ModelExported> context)
        {
            outcomes.Record(context.Message);
            return Task.CompletedTask;
        }

        public Task Consume(ConsumeContext<StageFailed> context)
        {
            outcomes.Record(context.Message);
            return Task.CompletedTask;
        }
    }
}
