using NvDinoPipeline.Distillation;
using NvDinoPipeline.EngineGeneration;
using NvDinoPipeline.Evaluation;
using NvDinoPipeline.Export;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Inference;
using NvDinoPipeline.Staging;
using NvDinoPipeline.Training;

namespace NvDinoPipeline.Cli;

/// <summary>The stage workers <c>nvdino serve</c> and <c>nvdino demo</c> host in one process.</summary>
public static class Workers
{
    public static PipelineHostBuilder AddAvailableWorkers(this PipelineHostBuilder pipeline) => pipeline
        .AddStagingWorker()
        .AddTrainingWorker()
        .AddDistillationWorker()
        .AddExportWorker()
        .AddEngineGenerationWorker()
        .AddInferenceWorker()
        .AddEvaluationWorker();
}
