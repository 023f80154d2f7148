using NvDinoPipeline.Orchestrator.Api;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Cli;

/// <summary>What the client commands use: configuration, the state database, the artifact store, the control channel.</summary>
public sealed class CliServices : IAsyncDisposable
{
    private readonly ServiceProvider _provider;

    private CliServices(IConfigurationRoot configuration, string? configFile)
    {
        Configuration = configuration;
        ConfigFile = configFile;
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddPipelineState(configuration);
        services.AddArtifactStore(configuration);
        _provider = services.BuildServiceProvider();
        Reader = ActivatorUtilities.CreateInstance<PipelineReader>(_provider);
        Control = new PipelineControl(configuration, _provider);
    }

    public IConfigurationRoot Configuration { get; }

    public string? ConfigFile { get; }

    public PipelineReader Reader { get; }

    public PipelineControl Control { get; }

    public IServiceProvider Provider => _provider;

    public IArtifactStore Artifacts => _provider.GetRequiredService<IArtifactStore>();

    public static CliServices Create(string? configFile) => new(CliConfiguration.Build(configFile), configFile);

    public ValueTask DisposeAsync() => _provider.DisposeAsync();
}
