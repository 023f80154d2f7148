using System.Globalization;
using System.Text;

namespace NvDinoPipeline.EngineGeneration.Tests.Support;

internal enum TrtexecBehaviour
{
    /// <summary>Writes the engine; a run exports the given embedding for every image.</summary>
    Succeeds,

    /// <summary>Prints an error and exits 1 while building.</summary>
    FailsToBuild,

    /// <summary>Prints the ONNX parser's errors and exits 1.</summary>
    CannotParse,

    /// <summary>Exits 0 without writing the engine.</summary>
    WritesNoEngine,

    /// <summary>Builds and runs like <see cref="Succeeds"/>, but prints no TensorRT version, device or compute capability.</summary>
    SilentAboutHost,
}

/// <summary>
/// A stand-in for TensorRT's trtexec, as a shell script: prints the banner, version and device lines a real
/// trtexec prints, records its arguments, writes a dummy engine, adds to the timing cache, and answers a verification run with a fixed
/// embedding per image (the test's images are all the same picture, so one reference embedding fits every row).
/// </summary>
internal sealed class FakeTrtexec
{
    private FakeTrtexec(string path, string argumentsLog)
    {
        Path = path;
        ArgumentsLog = argumentsLog;
    }

    public string Path { get; }

    public string ArgumentsLog { get; }

    /// <summary>One line per run: its arguments, space-separated.</summary>
    public IReadOnlyList<string> Runs => File.Exists(ArgumentsLog) ? File.ReadAllLines(ArgumentsLog) : [];

    /// <param name="fixedBatch">The batch a verification run answers for when it gets no --shapes (an engine with a fixed input).</param>
    public static FakeTrtexec Create(string folder, TrtexecBehaviour behaviour, float[]? embedding = null, int fixedBatch = 1)
    {
        Directory.CreateDirectory(folder);
        var path = System.IO.Path.Combine(folder, "trtexec");
        var log = System.IO.Path.Combine(folder, "trtexec.args");
        var values = string.Join(", ", (embedding ?? [0f]).Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        var dimension = (embedding ?? [0f]).Length;
        var script = new StringBuilder();
        script.Append($$"""
            #!/bin/bash
            echo "$*" >> '{{log}}'
            for a in "$@"; do
              case "$a" in
                --saveEngine=*) engine="${a#*=}" ;;
                --exportOutput=*) out="${a#*=}" ;;
                --shapes=*) shapes="${a#*=}" ;;
                --timingCacheFile=*) cache="${a#*=}" ;;
              esac
            done

            """);
        if (behaviour != TrtexecBehaviour.SilentAboutHost)
        {
            script.Append("""
                echo "&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec $*"
                echo "[11/22/2026-10:00:00] [I] === Device Information ==="
                echo "[11/22/2026-10:00:00] [I] Selected Device: NVIDIA A100-SXM4-40GB"
                echo "[11/22/2026-10:00:00] [I] Compute Capability: 8.0"
                echo "[11/22/2026-10:00:00] [I] TensorRT version: 10.3.0"

                """);
        }

        script.Append(behaviour switch
        {
            TrtexecBehaviour.FailsToBuild => """
                if [ -n "$engine" ]; then
                  echo "[11/22/2026-10:00:01] [E] Error[2]: [builder.cpp::buildSerializedNetwork::751] out of memory for tactic" >&2
                  echo "&&&& FAILED TensorRT.trtexec"
                  exit 1
                fi

                """,
            TrtexecBehaviour.CannotParse => """
                echo "[11/22/2026-10:00:01] [E] [TRT] ModelImporter.cpp:771: While parsing node number 7 [Foo -> \"x\"]:" >&2
                echo "[11/22/2026-10:00:01] [E] [TRT] ModelImporter.cpp:775: ERROR: No importer registered for op: Foo" >&2
                echo "[11/22/2026-10:00:01] [E] Failed to parse onnx file"
                echo "&&&& FAILED TensorRT.trtexec"
                exit 1

                """,
            TrtexecBehaviour.WritesNoEngine => """
                echo "&&&& PASSED TensorRT.trtexec"
                exit 0

                """,
            _ => "",
        });
        script.Append($$"""
            if [ -n "$engine" ]; then
              echo "serialized engine" > "$engine"
              if [ -n "$cache" ]; then echo "timings of this build" >> "$cache"; fi
            fi
            if [ -n "$out" ]; then
              batch="${shapes#*:}"; batch="${batch%%x*}"
              if [ -z "$shapes" ]; then batch={{fixedBatch}}; fi
              {
                echo '['
                echo ' { "name" : "output"'
                echo "  , \"dimensions\" : \"${batch}x{{dimension}}\""
                printf '  , "values" : [ '
                for ((i = 0; i < batch; i++)); do
                  if [ $i -gt 0 ]; then printf ', '; fi
                  printf '%s' '{{values}}'
                done
                echo ' ]'
                echo '  }'
                echo ']'
              } > "$out"
            fi
            echo "&&&& PASSED TensorRT.trtexec"

            """);
        File.WriteAllText(path, script.ToString().Replace("\r\n", "\n"));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new FakeTrtexec(path, log);
    }
}
