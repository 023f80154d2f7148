using System.Collections.Concurrent;
using Microsoft.ML.OnnxRuntime;

namespace NvDinoPipeline.Onnx;

/// <summary>
/// Routes ONNX Runtime's log messages to the session that produced them, keyed by the session's log id.
/// ONNX Runtime has one logger per process, installed when its environment is created; capture is only
/// possible when this class creates that environment (before any other ONNX Runtime use in the process).
/// </summary>
internal static class OnnxRuntimeLog
{
    private static readonly ConcurrentDictionary<string, ConcurrentQueue<string>> Sinks = new(StringComparer.Ordinal);

    // Held in a static field: the native side keeps calling it for the life of the process.
    private static readonly DOrtLoggingFunction Callback = OnLog;
    private static readonly Lazy<bool> Installed = new(Install, LazyThreadSafetyMode.ExecutionAndPublication);

    public static bool EnsureInstalled() => Installed.Value;

    public static IDisposable Listen(string logId, out ConcurrentQueue<string> sink)
    {
        var queue = new ConcurrentQueue<string>();
        if (!Sinks.TryAdd(logId, queue))
        {
            throw new InvalidOperationException($"ONNX Runtime log id '{logId}' is already being listened to.");
        }

        sink = queue;
        return new Subscription(logId);
    }

    private static bool Install()
    {
        if (OrtEnv.IsCreated)
        {
            return false;
        }

        var options = new EnvironmentCreationOptions
        {
            logId = "NvDinoPipeline",
            logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
            loggingFunction = Callback,
        };
        try
        {
            OrtEnv.CreateInstanceWithOptions(ref options);
            return true;
        }
        catch (OnnxRuntimeException)
        {
            // Another component created the environment first; its logger stays in charge.
            return false;
        }
    }

    private static void OnLog(IntPtr param, OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        var line = $"[{severity}] {category} {message}";
        if (Sinks.TryGetValue(logId, out var sink))
        {
            sink.Enqueue(line);
        }
        else
        {
            // Same destination as ONNX Runtime's default logger.
            Console.Error.WriteLine(line);
        }
    }

    private sealed class Subscription(string logId) : IDisposable
    {
        public void Dispose() => Sinks.TryRemove(logId, out _);
    }
}
