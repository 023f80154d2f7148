#!/usr/bin/env bash
# The check to run once on a host with an NVIDIA GPU and TensorRT (the machines this project is developed
# and tested on have neither). It builds the GPU binaries (or, with --docker, the GPU images), runs the demo
# pipeline with pipeline.deploy.target=tensorrt at fp32, fp16 and int8, and prints for each precision the
# engine build time, inference images/s on ONNX Runtime's TensorRT provider, and the engine's cosine to ONNX
# Runtime fp32. It exits non-zero when any run fails or inference did not run the prebuilt engine.
#
#   ./scripts/gpu-check.sh                    binaries under artifacts/gpu-check, then the three runs
#   ./scripts/gpu-check.sh --docker           also build the GPU images of deploy/docker (needs Docker)
#   ./scripts/gpu-check.sh --images 400       training images of each demo run (default 96)
#   ./scripts/gpu-check.sh --out DIR          where binaries, runs and the summary go
#
# Needs: the NVIDIA driver (nvidia-smi), CUDA 12 and cuDNN 9 libraries, TensorRT 10 with trtexec (the
# nvcr.io/nvidia/tensorrt containers have all of them), the .NET 10 SDK and access to nuget.org, which
# serves the CUDA build of libtorch (libtorch-cuda-12.8-linux-x64) that the package feed of the
# development machines lacks.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
out="$root/artifacts/gpu-check"
images=96
docker=0

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --docker) docker=1; shift ;;
    --images) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || { echo "gpu-check.sh: --images needs a number" >&2; exit 2; }
      images="$2"; shift 2 ;;
    --out) [[ $# -ge 2 ]] || { echo "gpu-check.sh: --out needs a folder" >&2; exit 2; }
      out="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

fail() { echo "gpu-check.sh: $*" >&2; exit 1; }

# What the runs need, before anything is built.
command -v nvidia-smi >/dev/null || fail "nvidia-smi is missing: this host has no NVIDIA driver."
command -v dotnet >/dev/null || fail "dotnet is missing: install the .NET 10 SDK."
command -v python3 >/dev/null || fail "python3 is missing (it reads the runs' JSON reports)."
trtexec="$(command -v trtexec || true)"
for folder in /usr/src/tensorrt/bin /opt/tensorrt/bin /usr/local/tensorrt/bin; do
  [[ -n $trtexec ]] || { [[ -x $folder/trtexec ]] && trtexec="$folder/trtexec"; }
done
[[ -n $trtexec ]] || fail "trtexec is not on PATH nor in /usr/src/tensorrt/bin, /opt/tensorrt/bin, /usr/local/tensorrt/bin: install TensorRT 10."
ldconfig -p | grep -q 'libnvinfer.so.10' || fail "libnvinfer.so.10 is not in the loader's cache: ONNX Runtime 1.31's TensorRT provider needs TensorRT 10."
gpu="$(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader | head -n 1)"
tensorrt="$("$trtexec" --help 2>&1 | grep -o 'TensorRT v[0-9]*' | head -n 1 || true)"
echo "GPU: $gpu"
echo "trtexec: $trtexec ($tensorrt)"

mkdir -p "$out"
echo "== building the GPU binaries (TorchBackend=cuda) into $out/artifacts"
dotnet build services/NvDinoPipeline.Cli/NvDinoPipeline.Cli.csproj -c Release -nologo \
  -p:TorchBackend=cuda -p:CustomAfterMicrosoftCommonTargets="$root/deploy/gpu.props" -p:ArtifactsPath="$out/artifacts" \
  > "$out/build.log" 2>&1 || { tail -n 30 "$out/build.log" >&2; fail "the GPU build failed; the log is $out/build.log"; }
nvdino="$out/artifacts/bin/NvDinoPipeline.Cli/release_linux-x64/nvdino.dll"
[[ -f $nvdino ]] || fail "the build wrote no $nvdino"

if [[ $docker -eq 1 ]]; then
  command -v docker >/dev/null || fail "--docker needs docker"
  for dockerfile in deploy/docker/*.Dockerfile; do
    if grep -q '^FROM .* AS gpu$' "$dockerfile"; then
      name="$(basename "$dockerfile" .Dockerfile)"
      echo "== docker build $name (gpu)"
      docker build -f "$dockerfile" --target gpu -t "nvdino/$name:gpu" . > "$out/docker-$name.log" 2>&1 \
        || { tail -n 30 "$out/docker-$name.log" >&2; fail "the GPU image of $name failed to build; the log is $out/docker-$name.log"; }
    fi
  done
fi

export EngineGeneration__TrtexecPath="$trtexec"
summary="$out/summary.txt"
: > "$summary"
status=0
for precision in fp32 fp16 int8; do
  home="$out/run-$precision"
  rm -rf "$home"
  mkdir -p "$home"
  echo "== demo, pipeline.deploy.target=tensorrt, $precision (log: $home/demo.log)"
  if ! NVDINO_HOME="$home" dotnet "$nvdino" demo --images "$images" \
      --set pipeline.deploy.target=tensorrt --set pipeline.deploy.precision="$precision" --set inference.execution_provider=tensorrt \
      > "$home/demo.log" 2>&1; then
    tail -n 20 "$home/demo.log" >&2
    echo "$precision: the demo pipeline failed (see $home/demo.log)" | tee -a "$summary"
    status=1
    continue
  fi
  # The engine job's engine.json and the inference job's inference.json, as the demo lists its artifacts.
  engine_json="$(grep -Eo 'file://[^ ]*/engine\.json' "$home/demo.log" | head -n 1 | sed 's|^file://||')"
  inference_json="$(grep -Eo 'file://[^ ]*/inference\.json' "$home/demo.log" | head -n 1 | sed 's|^file://||')"
  python3 - "$precision" "$engine_json" "$inference_json" >> "$summary" <<'PY' || status=1
import json, sys
precision, engine_path, inference_path = sys.argv[1:4]
engine = json.load(open(engine_path))
inference = json.load(open(inference_path))
trt, fidelity = engine["tensor_rt"], engine["fidelity"]
ran = inference.get("tensor_rt_engine")
print(f"{precision}: TensorRT {trt['version']} on {trt['gpu']} (compute capability {trt['compute_capability']}); "
      f"engine build {trt['build_seconds']:.1f} s; inference {inference['images_per_second']:.1f} images/s on {inference['execution_provider']}; "
      f"cosine to ONNX Runtime fp32 mean {fidelity['mean_cosine']:.5f}, min {fidelity['min_cosine']:.5f} on {fidelity['image_count']} image(s)"
      + (f"; int8 from {trt.get('int8_input')}" if precision == "int8" else ""))
if inference["execution_provider"] != "tensorrt" or ran is None:
    print(f"{precision}: inference did not run the prebuilt engine (provider {inference['execution_provider']})")
    sys.exit(1)
PY
done

echo
echo "== summary ($gpu; $tensorrt)"
cat "$summary"
exit $status
