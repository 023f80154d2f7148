namespace NvDinoPipeline.Testing;

/// <summary>An integration test needs a service that is neither configured nor startable here.</summary>
public sealed class TestServiceUnavailableException(string message, Exception? innerException = null)
    : Exception(message, innerException);
