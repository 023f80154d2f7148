using NvDinoPipeline.Hosting;

namespace NvDinoPipeline.Cli;

/// <summary>The stage workers this build of the command hosts in <c>nvdino serve</c> and <c>nvdino demo</c>.</summary>
public static class Workers
{
    public static PipelineHostBuilder AddAvailableWorkers(this PipelineHostBuilder pipeline) => pipeline;
}
