using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;

namespace NvDinoPipeline.Export;

public static class ExportWorkerExtensions
{
    /// <summary>Hosts the ONNX export worker: <see cref="ExportModel"/> in, <see cref="ModelExported"/> out,
    /// with <see cref="ExportOptions"/> bound to the section <c>Export</c> and validated at start-up.</summary>
    public static PipelineHostBuilder AddExportWorker(this PipelineHostBuilder pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        pipeline.Services.AddOptions<ExportOptions>()
            .Bind(pipeline.Configuration.GetSection(ExportOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        return pipeline.AddStageWorker<ExportModel, ModelExported, ExportRunner>(defaultConcurrentJobs: 1);
    }
}
