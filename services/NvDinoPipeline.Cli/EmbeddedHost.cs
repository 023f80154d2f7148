using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Orchestrator;

namespace NvDinoPipeline.Cli;

/// <summary>The embedded default: the orchestrator and every stage worker in this one process.</summary>
public static class EmbeddedHost
{
    public static IHost Build(string? configFile, IEnumerable<KeyValuePair<string, string?>>? overrides = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = AppContext.BaseDirectory,
            Args = CliConfiguration.HostArgs(configFile),
        });
        if (configFile is not null)
        {
            builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false);
        }
        if (overrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(overrides);
        }
        builder.AddNvDinoPipeline(pipeline => pipeline
            .AddOrchestrator()
            .AddAvailableWorkers());
        return builder.Build();
    }
}
