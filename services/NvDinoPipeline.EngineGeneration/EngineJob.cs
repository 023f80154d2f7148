using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>One <c>GenerateEngine</c> job as its parts see it: the command, its settings, its folders and its progress.</summary>
internal sealed class EngineJob(GenerateEngine command, StageContext context, EngineSettings settings, EngineGenerationOptions host, string work)
{
    public GenerateEngine Command => command;

    public EngineSettings Settings => settings;

    public EngineGenerationOptions Host => host;

    public string Work => work;

    public string Downloads => Path.Combine(context.ScratchDirectory, "downloads");

    public Uri Output(string name) => command.OutputUri.Append(name);

    public Task ReportAsync(double fraction, string message, CancellationToken cancellationToken) =>
        context.ReportAsync(new StageProgress(fraction, message), cancellationToken);

    public Task ReportNowAsync(double fraction, string message, CancellationToken cancellationToken) =>
        context.ReportNowAsync(new StageProgress(fraction, message), cancellationToken);
}
