namespace NvDinoPipeline.Hosting.Workers;

/// <summary>This process, as recorded on the jobs it claims.</summary>
public sealed class WorkerIdentity
{
    public string Id { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}";

    public string HostName { get; } = Environment.MachineName;
}
