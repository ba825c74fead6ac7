#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install the kit into it.
#   scripts/install.sh [--gpu] [--dev] [VENV_DIR]      (VENV_DIR defaults to .venv)
# CPU (default): torch==2.13.0 CPU build first, then the kit with its pinned set, then unsloth + unsloth_zoo
#   with --no-deps. Never torchvision, triton, xformers or bitsandbytes.
# GPU (--gpu): keeps whatever CUDA torch is already installed, adds the `gpu` extra, then unsloth --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=cpu; extras=""; venv=.venv
for arg in "$@"; do
  case "$arg" in
    --gpu) mode=gpu ;;
    --dev) extras="dev" ;;
    -h|--help) sed -n 2,6p "$0"; exit 0 ;;
    *) venv="$arg" ;;
  esac
done
[ "$mode" = gpu ] && extras="${extras:+$extras,}gpu"

if [ ! -x "$venv/bin/python" ]; then
  echo "[install] creating virtual environment $venv"
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip install --quiet --disable-pip-version-check)
stamp="$venv/.kit-install-$(cat pyproject.toml requirements-unsloth.txt | sha256sum | cut -c1-12)-$mode-${extras:-none}"
if [ -f "$stamp" ]; then
  echo "[install] $venv is up to date ($mode${extras:+, extras: $extras})"
  exit 0
fi

start=$(date +%s)
if [ "$mode" = cpu ]; then
  echo "[install] torch==2.13.0 (CPU build)"
  "${pip[@]}" "torch==2.13.0"
fi
# The constraint keeps pip from swapping the torch that is already there (CPU here, CUDA on Colab).
torch_version=$("$py" -W ignore -c "import torch; print(torch.__version__.split('+')[0])")
constraints=$(mktemp)
echo "torch==$torch_version" > "$constraints"
echo "[install] kit with the pinned set (transformers 5.17.0, trl 1.15.0, peft 0.21.2, datasets 4.8.5, accelerate 1.15.0, papermill 2.7.0)${extras:+ + extras: $extras}"
"${pip[@]}" -c "$constraints" -e ".${extras:+[$extras]}"
echo "[install] unsloth 2026.10.9 + unsloth_zoo 2026.10.9 (--no-deps)"
"${pip[@]}" --no-deps -r requirements-unsloth.txt
"$py" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (kit)" >/dev/null
rm -f "$constraints" "$venv"/.kit-install-*
touch "$stamp"
if [ "$mode" = cpu ]; then
  # Guard the promise: nothing CUDA-only may land on a CPU machine.
  "$py" - <<'PY'
import importlib.util, sys
bad = [m for m in ("torchvision", "triton", "xformers", "bitsandbytes") if importlib.util.find_spec(m)]
if bad:
    sys.exit(f"[install] CUDA-only packages found in a CPU environment: {bad}; remove them (pip uninstall {' '.join(bad)})")
PY
fi
echo "[install] done in $(( $(date +%s) - start )) s: $venv ($("$py" -c 'import torch; print("torch", torch.__version__)'))"
