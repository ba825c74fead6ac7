#!/usr/bin/env bash
# Prepare .whl/ for benchmarks/gpu_check.sh (run on a machine with the package registry, before the GPU call):
# the shared GPU wheel set (../shared/gpu/fetch-wheels.sh: unsloth, trl, peft, datasets, bitsandbytes, papermill,
# a kernel, requests, xxhash) plus what the kit and tests/test_gpu.py import that the GPU image lacks
# (pytest, psutil, rich, ipywidgets), about 5 MiB more. mplfonts (85 MiB) stays out: kit.plots falls back to
# DejaVu Sans without it. .whl/ is git-ignored; carry it to the GPU machine with the working tree.
#   bash benchmarks/gpu_wheels.sh [DEST=.whl]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.whl}"
SHARED="${GPU_SHARED:-$ROOT/../shared/gpu}"
bash "$SHARED/fetch-wheels.sh" "$DEST"
PIP="${PIP:-$ROOT/.venv/bin/pip}"
"$PIP" download -q --no-deps --python-version 3.12 --only-binary=:all: \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform any \
  -d "$DEST" pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1 psutil==7.2.2 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 \
  ipywidgets==8.1.9 widgetsnbextension==4.0.16 jupyterlab_widgets==3.0.17
du -sh "$DEST"
