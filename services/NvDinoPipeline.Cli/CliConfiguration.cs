using Microsoft.Extensions.Configuration;
using NvDinoPipeline.Hosting;

namespace NvDinoPipeline.Cli;

/// <summary>
/// The same settings a host reads: defaults, <c>appsettings.json</c> beside the binary, an optional
/// <c>--config</c> file, then environment variables (<c>Messaging__Transport=RabbitMq</c>).
/// </summary>
public static class CliConfiguration
{
    public static IConfigurationRoot Build(string? configFile)
    {
        var builder = new ConfigurationBuilder();
        NvDinoHome.AddDefaults(builder);
        builder.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true);
        if (configFile is not null)
        {
            if (!File.Exists(configFile))
            {
                throw new CliException($"--config: file '{configFile}' does not exist.");
            }
            builder.AddJsonFile(Path.GetFullPath(configFile), optional: false);
        }
        builder.AddEnvironmentVariables();
        return builder.Build();
    }

    /// <summary>Arguments for a host built inside the CLI, so it sees the same configuration.</summary>
    public static string[] HostArgs(string? configFile) =>
        configFile is null ? [] : [$"--{HostConfigFileKey}={Path.GetFullPath(configFile)}"];

    public const string HostConfigFileKey = "nvdino-config";
}

/// <summary>A user error: printed without a stack trace, exit code 2.</summary>
public sealed class CliException(string message) : Exception(message);
