using NvDinoPipeline.Deployment;

namespace NvDinoPipeline.Export;

/// <summary>The exported model does not compute what the trained one does; the message carries every check's figures.</summary>
public sealed class ExportParityException(string message, ParityReport report) : Exception(message)
{
    public ParityReport Report { get; } = report;
}
