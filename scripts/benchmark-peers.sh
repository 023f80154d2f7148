#!/usr/bin/env bash
# Installs what the benchmarks' peers run on: Debian's PyTorch (python3-torch) and OpenBLAS (without it Debian's
# torch multiplies through the reference BLAS, about 50 times slower), for benchmarks/Peers/*.py, which
# the inference and training benchmarks run beside their own cases in the same run (--peer), with Debian's own interpreter
# (/usr/bin/python3, whatever python3 comes first on the PATH). Needs root or sudo; idempotent.
set -euo pipefail

if /usr/bin/python3 -c 'import torch' 2>/dev/null && [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then
    echo "python3-torch is installed: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-torch libopenblas0-pthread
/usr/bin/python3 -c 'import torch; print("python3-torch", torch.__version__)'
update-alternatives --display libblas.so.3-x86_64-linux-gnu | sed -n 2,3p
