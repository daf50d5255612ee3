#!/usr/bin/env bash
# A core-only install (no extras) in its own venv: every stage module imports, and `hardneg judge` with the
# embedding judge either runs or stops with exit 2 and a message that names the extra to install.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${CORE_VENV:-.venv-core}
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
stamp="$VENV/.hardneg-core"
want="$(find src pyproject.toml -type f -not -path '*/__pycache__/*' -not -path '*.egg-info/*' | sort | xargs sha256sum | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || exit 1
  log=$(mktemp)
  if ! "$VENV/bin/python" -m pip install -q . > "$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  rm -f "$log"
  echo "$want" > "$stamp"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1  # outside the checkout: the installed package is what is imported
"$OLDPWD/$VENV/bin/python" - <<'PY' || exit 1
import importlib, pkgutil, hardneg
names = [m.name for m in pkgutil.walk_packages(hardneg.__path__, "hardneg.")]
for name in names:
    importlib.import_module(name)
print(f"core-only install: {len(names)} modules import")
# the data files ship too (package-data in pyproject.toml): the default cascade, the named configs, the prompts
from importlib.resources import files
from hardneg.judging.cascade import default_config_path, shipped_configs
missing = [str(p) for p in [default_config_path(), *shipped_configs().values()] if not p.is_file()]
missing += [] if any(files("hardneg.judging.prompts").iterdir()) and any(
    f.name.endswith(".txt") for f in files("hardneg.judging.prompts").iterdir()) else ["hardneg/judging/prompts/*.txt"]
if missing:
    raise SystemExit(f"the installed package lacks: {', '.join(missing)} (package-data in pyproject.toml)")
PY
cat > cascade.yaml <<'YAML'
stages:
  - {name: cosine, backend: embedding, t_better: 0.8}
YAML
sample=$("$OLDPWD/$VENV/bin/python" -c 'from hardneg.data.sample import sample_train_path; print(sample_train_path())')
"$OLDPWD/$VENV/bin/hardneg" --quiet judge "$sample" --config cascade.yaml --store j.sqlite > out.txt 2> err.txt
rc=$?
if [ "$rc" -eq 0 ]; then
  echo "core-only install: hardneg judge with the embedding judge ran"
elif [ "$rc" -eq 2 ] && grep -q "pip install 'hardneg\[" err.txt; then
  echo "core-only install: hardneg judge stops with exit 2 and names the extra: $(tr '\n' ' ' < err.txt)"
else
  echo "core-only install: hardneg judge exited $rc without naming an extra:" >&2
  cat out.txt err.txt >&2
  exit 1
fi
