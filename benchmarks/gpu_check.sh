#!/usr/bin/env bash
# THE one command to run on a GPU machine: everything the kit's CUDA path must prove, in one call, inside
# 10 minutes, with every raw log under one folder ($OUT when set, else runs/gpu_check/<UTC time>).
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine (repository root copied there, .whl/ included)
#   bash benchmarks/gpu_check.sh --dry-run  # on CPU: checks the wiring (every step's command is valid), runs nothing heavy
#
# Steps, in order of what they tell (each capped in time; when the budget runs out the rest is skipped and said so):
#   1 probe       nvidia-smi, package versions, requests/xxhash/psutil/click, a C compiler and Python.h
#                 (Triton builds its launchers with them): stops at once if any is missing
#   2 shapes      random-init Qwen2.5-0.5B, Qwen2.5-1.5B and SmolLM2-135M shapes (kit random-model)
#   3 test_gpu    tests/test_gpu.py alone (unsloth before trl): 4-bit at 512 tokens, fp16 model, bf16 base
#   4 plan        notebooks/batches/gpu.yaml through kit batch (all five notebooks, 4-bit, dtype auto, 512)
#   5 speed_0.5b  benchmarks/train_speed.py at the Qwen2.5-0.5B shape, all four paths
#   6 speed_1.5b  the same at the Qwen2.5-1.5B shape
# Results: summary.json (one line per step: status, seconds, log), probe.json, speed_*.json, the plan's
# runs/ folder with summary.md, and logs/*.log with each step's raw output.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $arg (use --dry-run)" >&2; exit 2 ;;
  esac
done
OUT_DIR="${OUT:-$ROOT/runs/gpu_check/$(date -u +%Y%m%dT%H%M%SZ)}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-560}"   # leaves the rest of a 10-minute call for start-up and copying back
mkdir -p "$OUT_DIR/logs"
START=$(date +%s)
SUMMARY="$OUT_DIR/summary.jsonl"
: > "$SUMMARY"

log() { echo "[gpu_check $(( $(date +%s) - START ))s] $*" | tee -a "$OUT_DIR/gpu_check.log"; }

# --- environment (the recipe of ../shared/gpu/README.md) ------------------------------------------------------
if [[ -z "${PYTHON:-}" ]]; then
  if [[ $DRY -eq 1 && -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
SITE="${GPU_CHECK_SITE:-/tmp/site}"
if [[ $DRY -eq 0 ]]; then
  if compgen -G "$ROOT/.whl/*.whl" > /dev/null; then
    log "installing $(ls "$ROOT"/.whl/*.whl | wc -l) wheels from .whl/ into $SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --target "$SITE" "$ROOT"/.whl/*.whl > "$OUT_DIR/logs/wheels.log" 2>&1 \
      || { log "FAIL: wheel install (logs/wheels.log)"; tail -5 "$OUT_DIR/logs/wheels.log"; exit 1; }
  else
    log "no .whl/ folder: using the packages already installed (make it with: bash benchmarks/gpu_wheels.sh)"
  fi
  export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  export UNSLOTH_DISABLE_CPU_FALLBACK=1   # a broken CUDA set-up fails loudly instead of training on the CPU
else
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1 \
       UNSLOTH_LLAMA_CPP_OFFLINE=1 UNSLOTH_COMPILE_LOCATION=/tmp/unsloth_cache PYTHONUNBUFFERED=1 \
       KIT_HEADLESS=1 TOKENIZERS_PARALLELISM=false

# step NAME CAP_SECONDS COMMAND...: runs COMMAND with its output in logs/NAME.log, within min(CAP, budget left).
FAILED=0
step() {
  local name="$1" cap="$2"; shift 2
  local left=$(( BUDGET_S - ($(date +%s) - START) ))
  local limit=$(( cap < left ? cap : left ))
  if (( limit < 20 )); then
    log "SKIP $name: time budget spent (${left}s of ${BUDGET_S}s left)"
    printf '{"step": "%s", "status": "skipped", "reason": "time budget spent", "seconds": 0}\n' "$name" >> "$SUMMARY"
    return 0
  fi
  log "START $name (limit ${limit}s): $*"
  local t0=$(date +%s) rc=0
  timeout --kill-after=10 "$limit" "$@" > "$OUT_DIR/logs/$name.log" 2>&1 || rc=$?
  local took=$(( $(date +%s) - t0 )) status=ok
  if (( rc == 124 || rc == 137 )); then status=timeout; elif (( rc != 0 )); then status=failed; fi
  [[ $status == ok ]] || FAILED=$(( FAILED + 1 ))
  log "$(tr a-z A-Z <<< "$status") $name in ${took}s (rc $rc, logs/$name.log)"
  [[ $status == ok ]] || tail -n 8 "$OUT_DIR/logs/$name.log" | sed 's/^/    /' | tee -a "$OUT_DIR/gpu_check.log"
  printf '{"step": "%s", "status": "%s", "rc": %d, "seconds": %d, "log": "logs/%s.log"}\n' \
    "$name" "$status" "$rc" "$took" "$name" >> "$SUMMARY"
  return $rc
}

# --- 1 probe: fail fast --------------------------------------------------------------------------------------
cat > "$OUT_DIR/probe.py" <<'PY'
"""Fail fast: what the CUDA path needs, checked before any device time is spent on a doomed run."""
import importlib, json, os, shutil, subprocess, sys, sysconfig
dry = os.environ.get("GPU_CHECK_DRY") == "1"
report, problems = {"python": sys.version.split()[0]}, []
smi = shutil.which("nvidia-smi")
if smi:
    out = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True)
    report["nvidia_smi"] = out.stdout.strip() or out.stderr.strip()
    print(subprocess.run([smi], capture_output=True, text=True).stdout)
else:
    report["nvidia_smi"] = None
    problems.append("nvidia-smi not found: no NVIDIA driver")
import importlib.metadata, importlib.util
for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "triton",
             "unsloth_zoo", "unsloth", "papermill"):
    try:
        if dry:  # on CPU: installed is enough (importing unsloth there takes a minute and proves nothing)
            if importlib.util.find_spec(name) is None:
                raise ImportError("not installed")
            report[name] = importlib.metadata.version(name.replace("_", "-"))
            continue
        module = importlib.import_module(name)
        report[name] = getattr(module, "__version__", "?")
    except Exception as exc:  # noqa: BLE001 - every failure is a finding
        report[name] = None
        problems.append(f"import {name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
for name in ("requests", "xxhash", "psutil", "click", "pytest", "yaml", "matplotlib", "pandas", "rich"):
    # hard imports of unsloth_zoo / datasets, and what the kit and tests/test_gpu.py need (benchmarks/gpu_wheels.sh)
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"import {name}: {exc}")
report["cc"] = shutil.which("cc") or shutil.which("gcc")
if not report["cc"]:
    problems.append("no C compiler (cc): Triton compiles each kernel launcher with it")
include = sysconfig.get_paths()["include"]
report["python_h"] = os.path.isfile(os.path.join(include, "Python.h"))
if not report["python_h"]:
    problems.append(f"Python.h missing in {include}: Triton's launcher build needs the Python headers")
try:
    if dry:
        raise ImportError("dry run: CUDA not probed")
    import torch
    report["cuda"] = torch.cuda.is_available()
    if report["cuda"]:
        report["device"] = torch.cuda.get_device_name(0)
        report["bf16"] = torch.cuda.is_bf16_supported()
        report["torch_cuda"] = torch.version.cuda
    else:
        problems.append("torch.cuda.is_available() is False")
except ImportError as exc:
    report["cuda"] = None
    problems.append(f"torch: {exc}")
except Exception as exc:  # noqa: BLE001
    problems.append(f"torch: {exc}")
report["problems"] = problems
with open(os.path.join(os.environ["GPU_CHECK_OUT"], "probe.json"), "w") as f:
    json.dump(report, f, indent=2)
print(json.dumps(report, indent=2))
if problems:
    print("PROBE: " + ("(dry run, not fatal) " if dry else "") + "; ".join(problems))
# On CPU (dry run) a missing GPU, bitsandbytes, triton or compiler is expected: only the kit's own imports must work.
fatal = [p for p in problems if not dry or p.startswith(("import requests", "import xxhash", "import psutil", "import click",
                                                          "import pytest", "import yaml", "import matplotlib",
                                                          "import transformers", "import trl", "import peft", "import unsloth"))]
sys.exit(1 if fatal else 0)
PY
export GPU_CHECK_OUT="$OUT_DIR" GPU_CHECK_DRY=$DRY
if ! step probe 90 "$PYTHON" "$OUT_DIR/probe.py"; then
  log "probe failed: stopping before any GPU work. See logs/probe.log and probe.json."
  exit 1
fi
if [[ $DRY -eq 0 ]]; then
  head -c 2000 "$OUT_DIR/logs/probe.log" | grep -m1 -E "H100|H200|A100|L4|T4|NVIDIA" | tee -a "$OUT_DIR/gpu_check.log" || true
fi

# --- 2..6 ------------------------------------------------------------------------------------------------------
SHAPES="$ROOT/.cache/shapes"
if [[ $DRY -eq 1 ]]; then
  step shapes 60 "$PYTHON" -c "from kit.builders.shapes import shape, parameter_count; [print(n, parameter_count(n)) for n in ('qwen2.5-0.5b', 'qwen2.5-1.5b', 'smollm2-135m') if shape(n)]"
  step test_gpu 90 "$PYTHON" -m pytest -q --collect-only tests/test_gpu.py
  step plan 90 "$PYTHON" -m kit batch notebooks/batches/gpu.yaml --out "$OUT_DIR/plan" --dry-run
  step speed_0.5b 60 "$PYTHON" benchmarks/train_speed.py --dry-run --shape qwen2.5-0.5b --seq-len 1024 --batch 4 \
    --out "$OUT_DIR/speed_0.5b.json"
  step speed_1.5b 60 "$PYTHON" benchmarks/train_speed.py --dry-run --shape qwen2.5-1.5b --seq-len 1024 --batch 4 \
    --out "$OUT_DIR/speed_1.5b.json"
else
  step shapes 90 bash -c "for s in qwen2.5-0.5b smollm2-135m qwen2.5-1.5b; do [ -f '$SHAPES'/\$s/config.json ] || \
    '$PYTHON' -m kit random-model '$SHAPES'/\$s --shape \$s || exit 1; done"
  step test_gpu 150 "$PYTHON" -m pytest -q -x -rs tests/test_gpu.py
  # Three notebooks at a time share the GPU (05 waits for its adapters): correctness here, speed in steps 5-6.
  step plan 240 "$PYTHON" -m kit batch notebooks/batches/gpu.yaml --out "$OUT_DIR/plan" --jobs 3
  step speed_0.5b 130 "$PYTHON" benchmarks/train_speed.py --model "$SHAPES/qwen2.5-0.5b" --seq-len 1024 --batch 4 \
    --steps 5 --warmup 2 --timeout 100 --logs "$OUT_DIR/logs/speed_0.5b" --out "$OUT_DIR/speed_0.5b.json"
  step speed_1.5b 130 "$PYTHON" benchmarks/train_speed.py --model "$SHAPES/qwen2.5-1.5b" --seq-len 1024 --batch 4 \
    --steps 5 --warmup 2 --timeout 100 --logs "$OUT_DIR/logs/speed_1.5b" --out "$OUT_DIR/speed_1.5b.json"
fi

"$PYTHON" - "$SUMMARY" "$OUT_DIR/summary.json" "$DRY" "$(( $(date +%s) - START ))" <<'PY'
import json, sys
steps = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
json.dump({"dry_run": sys.argv[3] == "1", "seconds": int(sys.argv[4]), "steps": steps}, open(sys.argv[2], "w"), indent=2)
PY
log "done in $(( $(date +%s) - START ))s: $FAILED step(s) not ok; everything is under $OUT_DIR"
exit $(( FAILED > 0 ? 1 : 0 ))
