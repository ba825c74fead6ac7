#!/usr/bin/env bash
# Prepare .whl/ for benchmarks/gpu_check.sh (run on a machine with the package registry, before the GPU call):
# the shared GPU wheel set (../shared/gpu/fetch-wheels.sh: unsloth, trl, peft, datasets, bitsandbytes, papermill,
# a kernel, requests, xxhash) in .whl/, plus what the kit and tests/test_gpu.py import that the GPU image may
# lack (pytest, psutil, rich, ipywidgets, click, attrs: jsonschema needs it for papermill) in .whl/extra/, about 5 MiB more. gpu_check.sh installs an extra
# group only where the machine's own Python cannot import it, so these never shadow the image's copies.
# mplfonts (85 MiB) stays out: kit.plots falls back to DejaVu Sans without it.
# .whl/ is git-ignored: send it along with the working tree (the device tool's carry: [".whl"]).
#   bash benchmarks/gpu_wheels.sh [DEST=.whl]
#   env: PIP="python3 -m pip"   any pip command line (default: the repository's .venv/bin/pip, else python3 -m pip)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.whl}"
SHARED="${GPU_SHARED:-$ROOT/../shared/gpu}"
[[ -f "$SHARED/fetch-wheels.sh" ]] || { echo "gpu_wheels: $SHARED/fetch-wheels.sh not found (set GPU_SHARED)" >&2; exit 1; }
bash "$SHARED/fetch-wheels.sh" "$DEST"
if [[ -n "${PIP:-}" ]]; then
  read -r -a PIP_CMD <<< "$PIP"   # a command line, e.g. "python3 -m pip" or "uv pip"
elif [[ -x "$ROOT/.venv/bin/pip" ]]; then
  PIP_CMD=("$ROOT/.venv/bin/pip")
else
  PIP_CMD=(python3 -m pip)
fi
mkdir -p "$DEST/extra"
"${PIP_CMD[@]}" download -q --no-deps --python-version 3.12 --only-binary=:all: \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform any \
  -d "$DEST/extra" pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1 psutil==7.2.2 rich==15.0.0 markdown-it-py==4.3.0 \
  mdurl==0.1.2 ipywidgets==8.1.9 widgetsnbextension==4.0.16 jupyterlab_widgets==3.0.17 click==8.5.1 attrs==26.1.0
# Older layouts kept these at the top of .whl/, where they would be installed unconditionally.
for name in pytest pluggy iniconfig psutil rich markdown_it_py mdurl ipywidgets widgetsnbextension jupyterlab_widgets click attrs; do
  rm -f "$DEST"/"$name"-*.whl
done
du -sh "$DEST" "$DEST/extra"
