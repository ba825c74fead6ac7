#!/usr/bin/env bash
# THE one command to run on a GPU machine: everything the kit's CUDA path must prove, most valuable first, in
# under 480 s of its own, with what comes back written to $OUT after every step (at most 7 files).
#
#   bash benchmarks/gpu_check.sh             # on the GPU machine: the working tree copied there WITH .whl/
#                                            #   (make it: bash benchmarks/gpu_wheels.sh; send it: carry [".whl"])
#   bash benchmarks/gpu_check.sh --rehearse  # on CPU, before any GPU run: a Python 3.12 venv like the GPU image
#                                            #   (cached in ~/.cache/unsloth-notebook-kit/gpu-rehearsal, several GB),
#                                            #   .whl/ installed the same way, PIP_NO_INDEX=1, UNSLOTH_ALLOW_CPU=1;
#                                            #   every step up to the first CUDA allocation; prints what would fail
#   bash benchmarks/gpu_check.sh --dry-run   # on CPU in seconds (the test command): every step's command is valid
#
# Steps (GPU seconds, capped; the caps add up to the 480 s budget, speed_1.5b gets only what is left):
#   wheels      20  .whl/*.whl into a --target folder on PYTHONPATH (--no-compile); .whl/extra/ only where missing
#   probe       90  nvidia-smi, import unsloth FIRST then unsloth_zoo/trl/peft/bitsandbytes/..., requests/xxhash/
#                   psutil/click, a C compiler and Python.h (Triton builds its launchers): stops at once if not ok
#   shapes      40  random-init Qwen2.5-0.5B and SmolLM2-135M shapes (kit.builders.shapes, on the GPU)
#   speed_0.5b 130  benchmarks/train_speed.py kit vs plain, LoRA 16-bit and QLoRA 4-bit, seq len 1024, few steps
#   plan       120  notebooks/batches/gpu.yaml through kit batch (4-bit, dtype auto, few steps and eval samples)
#   test_gpu    80  tests/test_gpu.py alone (unsloth before trl)
#   methods     --  notebooks/batches/methods_gpu.yaml (06: every method, qlora/lora_8bit too), when 60 s are left
#   speed_1.5b  --  the 1.5B shape, when at least 100 s are left
# Work happens in $GPU_CHECK_WORK (default /tmp/gpu_check-<time>), never in $OUT. $OUT (default
# runs/gpu_check/<time>) gets summary.json, gpu_check.log, probe.json, speed_*.json, plan_summary.md and
# logs.tar.gz (benchmarks/gpu_publish.py). A step over its cap is stopped with its whole process tree.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE=gpu
for arg in "$@"; do
  case "$arg" in
    --dry-run) MODE=dry-run ;;
    --rehearse) MODE=rehearse ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $arg (use --dry-run or --rehearse)" >&2; exit 2 ;;
  esac
done
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
SUFFIX=""; [[ $MODE != gpu ]] && SUFFIX="-$MODE"
OUT_DIR="${OUT:-$ROOT/runs/gpu_check/$STAMP$SUFFIX}"
WORK="${GPU_CHECK_WORK:-${TMPDIR:-/tmp}/gpu_check-$STAMP}"
mkdir -p "$OUT_DIR" "$WORK/logs"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"; WORK="$(cd "$WORK" && pwd)"
case "$WORK/" in "$OUT_DIR"/*) echo "gpu_check: GPU_CHECK_WORK must be outside \$OUT ($OUT_DIR)" >&2; exit 2 ;; esac
START=$(date +%s)
: > "$WORK/summary.jsonl"; : > "$WORK/gpu_check.log"

BUDGET_S="${GPU_CHECK_BUDGET_S:-480}"
CAPS=(wheels:20 probe:90 shapes:40 speed_0.5b:130 plan:120 test_gpu:80)
cap() { local kv; for kv in "${CAPS[@]}"; do [[ ${kv%%:*} == "$1" ]] && { echo "${kv#*:}"; return; }; done; echo 60; }
CAPS_SUM=0; for kv in "${CAPS[@]}"; do CAPS_SUM=$(( CAPS_SUM + ${kv#*:} )); done

log() { echo "[gpu_check $(( $(date +%s) - START ))s] $*" | tee -a "$WORK/gpu_check.log"; }
if (( CAPS_SUM > BUDGET_S )); then
  log "FAIL: the steps' caps add up to ${CAPS_SUM}s, over the ${BUDGET_S}s budget"; exit 1
fi
log "mode $MODE: caps add up to ${CAPS_SUM}s of the ${BUDGET_S}s budget; work in $WORK; results in $OUT_DIR"

# --- the Python and its packages --------------------------------------------------------------------------------
IMAGE_PACKAGES="torch==2.11.0 triton==3.6.0 transformers==5.17.0 accelerate==1.15.0 huggingface_hub==1.33.0 numpy
pandas pyarrow matplotlib tqdm rich pyyaml sentencepiece tokenizers safetensors"   # ../shared/gpu/README.md
if [[ $MODE == rehearse ]]; then
  VENV="${GPU_REHEARSAL_VENV:-$HOME/.cache/unsloth-notebook-kit/gpu-rehearsal}"
  if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.image-packages" 2>/dev/null)" != "$IMAGE_PACKAGES" ]]; then
    PY312="$(command -v python3.12 2>/dev/null && python3.12 -c '' 2>/dev/null && command -v python3.12 || true)"
    [[ -z "$PY312" ]] && PY312="$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)"
    [[ -x "$PY312" ]] || { log "FAIL: no Python 3.12 to build the rehearsal venv (install one, or set GPU_REHEARSAL_VENV)"; exit 1; }
    log "building the rehearsal venv $VENV with $PY312 (several GB, once): $IMAGE_PACKAGES" 
    rm -rf "$VENV" && "$PY312" -m venv "$VENV" \
      && "$VENV/bin/python" -m pip install -q --upgrade pip > "$WORK/logs/rehearsal_venv.log" 2>&1 \
      && "$VENV/bin/python" -m pip install $IMAGE_PACKAGES >> "$WORK/logs/rehearsal_venv.log" 2>&1 \
      && echo "$IMAGE_PACKAGES" > "$VENV/.image-packages" \
      || { log "FAIL: building the rehearsal venv (logs/rehearsal_venv.log)"; tail -3 "$WORK/logs/rehearsal_venv.log"; exit 1; }
    START=$(date +%s)   # the GPU machine comes with its packages: the build is not part of the timing
  fi
  PYTHON="$VENV/bin/python"
  export PIP_NO_INDEX=1 UNSLOTH_ALLOW_CPU=1   # no network there; Unsloth's CUDA import path without a device
elif [[ $MODE == dry-run ]]; then
  PYTHON="${PYTHON:-$( [[ -x "$ROOT/.venv/bin/python" ]] && echo "$ROOT/.venv/bin/python" || echo python3 )}"
else
  PYTHON="${PYTHON:-python3}"
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1 \
       UNSLOTH_LLAMA_CPP_OFFLINE=1 UNSLOTH_COMPILE_LOCATION="$WORK/unsloth_cache" PYTHONUNBUFFERED=1 \
       KIT_HEADLESS=1 TOKENIZERS_PARALLELISM=false GPU_CHECK_MODE=$MODE GPU_CHECK_WORK="$WORK"
# A broken CUDA set-up fails loudly instead of quietly training on the CPU (not on CPU rehearsals: nothing to catch).
[[ $MODE == gpu ]] && export UNSLOTH_DISABLE_CPU_FALLBACK=1

FAILED=0 LAST_STATUS=ok
# rehearsed NAME CHECK...: on CPU a step ends at the first CUDA allocation; CHECK says whether it got that far
# and no failure came before it. Its verdict replaces the step's own.
rehearsed() {
  local name="$1" was="$LAST_STATUS"; shift
  if "$@" 2>&1 | tee -a "$WORK/gpu_check.log"; (( PIPESTATUS[0] == 0 )); then
    [[ $was == ok ]] || FAILED=$(( FAILED - 1 ))
    log "OK $name (rehearsal): everything before the GPU work ran"
    record "check_$name" reached_gpu 0 0 "rehearsal: stopped where CUDA is needed"
  else
    [[ $was == ok ]] && FAILED=$(( FAILED + 1 ))
    log "WOULD FAIL $name (rehearsal): see the lines above"
    record "check_$name" would_fail 1 0 "rehearsal: fails before CUDA work"
  fi
}
record() {  # record NAME STATUS RC SECONDS [REASON]
  printf '{"step": "%s", "status": "%s", "rc": %d, "seconds": %d, "cap_s": %d, "log": "logs/%s.log"%s}\n' \
    "$1" "$2" "$3" "$4" "$(cap "$1")" "$1" "${5:+, \"reason\": \"$5\"}" >> "$WORK/summary.jsonl"
}
publish() {
  "$PYTHON" "$ROOT/benchmarks/gpu_publish.py" "$WORK" "$OUT_DIR" --seconds $(( $(date +%s) - START )) "$@" \
    >> "$WORK/logs/publish.log" 2>&1 || log "publish: $(tail -1 "$WORK/logs/publish.log")"
}
CAPS_JSON=""; for kv in "${CAPS[@]}"; do CAPS_JSON+="${CAPS_JSON:+, }\"${kv%%:*}\": ${kv#*:}"; done
printf '{"mode": "%s", "budget_s": %d, "caps_sum_s": %d, "caps": {%s}, "started_utc": "%s", "python": "%s"}\n' \
  "$MODE" "$BUDGET_S" "$CAPS_SUM" "$CAPS_JSON" "$STAMP" "$PYTHON" > "$WORK/meta.json"

# step NAME LIMIT COMMAND...: COMMAND with its output in logs/NAME.log, stopped (whole process tree) after
# min(LIMIT, budget left); its line in summary.json and $OUT refreshed as soon as it ends.
step() {
  local name="$1" limit="$2"; shift 2
  if [[ $MODE == gpu ]]; then
    local left=$(( BUDGET_S - ($(date +%s) - START) ))
    (( left < limit )) && limit=$left
  fi
  if (( limit < 15 )); then
    log "SKIP $name: time budget spent"; record "$name" skipped 0 0 "time budget spent"; publish; return 0
  fi
  log "START $name (limit ${limit}s): $*"
  local t0=$(date +%s) rc=0
  "$PYTHON" "$ROOT/benchmarks/gpu_step.py" "$limit" "$WORK/logs/$name.log" -- "$@" || rc=$?
  local took=$(( $(date +%s) - t0 )) status=ok
  if (( rc == 124 )); then status=timeout; elif (( rc != 0 )); then status=failed; fi
  LAST_STATUS=$status
  [[ $status == ok ]] || FAILED=$(( FAILED + 1 ))
  log "$(tr a-z A-Z <<< "$status") $name in ${took}s (rc $rc, logs/$name.log)"
  [[ $status == ok ]] || tail -n 8 "$WORK/logs/$name.log" | sed 's/^/    /' | tee -a "$WORK/gpu_check.log"
  record "$name" "$status" "$rc" "$took"
  publish
  return $rc
}
finish() {
  publish --final
  log "done in $(( $(date +%s) - START ))s: $FAILED step(s) not ok; $(ls "$OUT_DIR" | wc -l) files in $OUT_DIR: $(ls "$OUT_DIR" | tr '\n' ' ')"
  publish --final   # the last line above into gpu_check.log there too
  exit "$1"
}

# --- wheels (.whl/ travels with the working tree; without it the run would test the wrong packages) ----------
SITE="$WORK/site"
if [[ $MODE != dry-run ]]; then
  if ! compgen -G "$ROOT/.whl/*.whl" > /dev/null; then
    log "FAIL: no .whl/*.whl in $ROOT: make it with 'bash benchmarks/gpu_wheels.sh' and send .whl along (run tool: carry [\".whl\"])"
    record wheels failed 1 0 "no .whl folder"; finish 1
  fi
  t0=$(date +%s)
  log "START wheels: $(ls "$ROOT"/.whl/*.whl | wc -l) wheels into $SITE (--target, --no-compile)"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$SITE" \
    "$ROOT"/.whl/*.whl > "$WORK/logs/wheels.log" 2>&1 \
    || { log "FAIL: wheel install (logs/wheels.log)"; tail -5 "$WORK/logs/wheels.log"; record wheels failed 1 $(( $(date +%s) - t0 )); finish 1; }
  export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  mapfile -t EXTRA < <("$PYTHON" "$ROOT/benchmarks/gpu_extras.py" "$ROOT/.whl/extra")
  if (( ${#EXTRA[@]} )); then
    log "extras this Python lacks: $(printf '%s ' "${EXTRA[@]##*/}")"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$SITE" \
      "${EXTRA[@]}" >> "$WORK/logs/wheels.log" 2>&1 \
      || { log "FAIL: extra wheels (logs/wheels.log)"; record wheels failed 1 $(( $(date +%s) - t0 )); finish 1; }
  fi
  log "OK wheels in $(( $(date +%s) - t0 ))s"; record wheels ok 0 $(( $(date +%s) - t0 ))
else
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi

# --- probe: fail fast -------------------------------------------------------------------------------------------
cat > "$WORK/probe.py" <<'PY'
"""Fail fast: what the CUDA path needs, checked before device time is spent on a doomed run. unsloth is imported
right after torch: unsloth_zoo refuses to import before it, and it must patch transformers/trl/peft first."""
import importlib, importlib.metadata, importlib.util, json, os, shutil, subprocess, sys, sysconfig, time
mode = os.environ.get("GPU_CHECK_MODE", "gpu")
report, problems, expected = {"python": sys.version.split()[0], "mode": mode}, [], []
smi = shutil.which("nvidia-smi")
if smi:
    out = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True)
    report["nvidia_smi"] = out.stdout.strip() or out.stderr.strip()
    print(subprocess.run([smi], capture_output=True, text=True).stdout)
else:
    report["nvidia_smi"] = None
    (expected if mode != "gpu" else problems).append("nvidia-smi not found: no NVIDIA driver")
timings = report["import_s"] = {}
for name in ("torch", "unsloth", "unsloth_zoo", "transformers", "trl", "peft", "accelerate", "datasets",
             "bitsandbytes", "triton", "papermill", "ipykernel"):
    try:
        if mode == "dry-run":  # on CPU: installed is enough (importing unsloth there takes a minute and proves nothing)
            if importlib.util.find_spec(name) is None:
                raise ImportError("not installed")
            report[name] = importlib.metadata.version(name.replace("_", "-"))
            continue
        t0 = time.perf_counter()
        module = importlib.import_module(name)
        timings[name] = round(time.perf_counter() - t0, 2)
        report[name] = getattr(module, "__version__", "?")
    except Exception as exc:  # noqa: BLE001 - every failure is a finding
        report[name] = None
        line = f"import {name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        (expected if mode == "dry-run" and name in ("bitsandbytes", "triton") else problems).append(line)
for name in ("requests", "xxhash", "psutil", "click", "pytest", "yaml", "matplotlib", "pandas", "rich", "kit"):
    try:  # hard imports of unsloth_zoo / datasets, and what the kit and tests/test_gpu.py need
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"import {name}: {exc}")
report["cc"] = shutil.which("cc") or shutil.which("gcc")
if not report["cc"]:
    (expected if mode == "dry-run" else problems).append("no C compiler (cc): Triton compiles each kernel launcher with it")
include = sysconfig.get_paths()["include"]
report["python_h"] = os.path.isfile(os.path.join(include, "Python.h"))
if not report["python_h"]:
    (expected if mode == "dry-run" else problems).append(f"Python.h missing in {include}: Triton's launcher build needs it")
if mode != "dry-run" and report.get("torch"):
    import torch
    report["torch_cuda"] = torch.version.cuda
    report["cuda"] = torch.cuda.is_available()
    if report["cuda"]:
        report["device"] = torch.cuda.get_device_name(0)
        report["bf16"] = torch.cuda.is_bf16_supported()
        report["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    else:
        (expected if mode == "rehearse" else problems).append("torch.cuda.is_available() is False")
report["problems"], report["expected_here"] = problems, expected
with open(os.path.join(os.environ["GPU_CHECK_WORK"], "probe.json"), "w") as f:
    json.dump(report, f, indent=2)
print(json.dumps(report, indent=2))
if expected:
    print(f"PROBE ({mode}, expected without a GPU): " + "; ".join(expected))
if problems:
    print("PROBE FAILED: " + "; ".join(problems))
sys.exit(1 if problems else 0)
PY
if ! step probe "$( [[ $MODE == rehearse ]] && echo 400 || cap probe )" "$PYTHON" "$WORK/probe.py"; then
  log "probe failed: stopping before any GPU work. See probe.json:"
  grep -h "PROBE FAILED" "$WORK/logs/probe.log" | cut -c1-600 | tee -a "$WORK/gpu_check.log"
  finish 1
fi
[[ $MODE == gpu ]] && { grep -m1 -E "H100|H200|A100|L40|L4|T4|A10|NVIDIA" "$WORK/logs/probe.log" | tee -a "$WORK/gpu_check.log" || true; }

# --- the rest, most valuable first ------------------------------------------------------------------------------
SHAPES="$ROOT/.cache/shapes"
# shapes NAME...: the random-init models not built yet, in one process (one torch import; on CUDA when there is one)
shapes() {
  "$PYTHON" -c 'import sys, time; from pathlib import Path; from kit.builders.shapes import build_random_model
for name in sys.argv[2:]:
    target, t0 = Path(sys.argv[1]) / name, time.perf_counter()
    if not (target / "config.json").is_file():
        build_random_model(target, name)
    print(f"shape {name}: {target} ({time.perf_counter() - t0:.1f} s)", flush=True)' "$SHAPES" "$@"
}
SPEED_ARGS=(--seq-len 1024 --batch 4 --steps 4 --warmup 2 --dtype auto)
speed_large() {  # speed_large BUDGET: the 1.5B shape, built then measured like the 0.5B one
  shapes qwen2.5-1.5b && "$PYTHON" benchmarks/train_speed.py --model "$SHAPES/qwen2.5-1.5b" $SPEED_FLAGS \
    --timeout 60 --budget "$1" --logs "$WORK/logs/speed_1.5b" --out "$WORK/speed_1.5b.json"
}
SPEED_FLAGS="${SPEED_ARGS[*]}"
export -f shapes speed_large   # gpu_step.py runs them through bash -c
export PYTHON SHAPES WORK SPEED_FLAGS
case $MODE in
dry-run)
  step shapes 60 "$PYTHON" -c "from kit.builders.shapes import shape, parameter_count; [print(n, parameter_count(n)) for n in ('qwen2.5-0.5b', 'qwen2.5-1.5b', 'smollm2-135m') if shape(n)]"
  step speed_0.5b 60 "$PYTHON" benchmarks/train_speed.py --dry-run --shape qwen2.5-0.5b "${SPEED_ARGS[@]}" \
    --budget $(( $(cap speed_0.5b) - 10 )) --out "$WORK/speed_0.5b.json"
  step plan 90 "$PYTHON" -m kit batch notebooks/batches/gpu.yaml --out "$WORK/plan" --jobs 5 --dry-run
  step test_gpu 90 "$PYTHON" -m pytest -q --collect-only -p no:cacheprovider tests/test_gpu.py
  step methods 60 "$PYTHON" -m kit batch notebooks/batches/methods_gpu.yaml --out "$WORK/methods" --dry-run
  step speed_1.5b 60 "$PYTHON" benchmarks/train_speed.py --dry-run --shape qwen2.5-1.5b "${SPEED_ARGS[@]}" \
    --out "$WORK/speed_1.5b.json"
  ;;
rehearse)  # CPU limits; the GPU caps were checked above. Each step goes as far as a machine without CUDA can.
  step shapes 400 bash -c 'shapes "$@"' shapes qwen2.5-0.5b smollm2-135m
  step speed_0.5b 600 "$PYTHON" benchmarks/train_speed.py --model "$SHAPES/qwen2.5-0.5b" "${SPEED_ARGS[@]}" \
    --paths kit_lora16,kit_qlora4 --timeout 400 --budget 500 --logs "$WORK/logs/speed_0.5b" --out "$WORK/speed_0.5b.json"
  rehearsed speed_0.5b "$PYTHON" benchmarks/gpu_rehearsal.py check-speed "$WORK/speed_0.5b.json"
  # The five training runs (05 reads their adapters, so it cannot get further here than they do).
  "$PYTHON" benchmarks/gpu_rehearsal.py plan-file notebooks/batches/gpu.yaml "$WORK/plan.yaml" 5
  step plan 900 "$PYTHON" -m kit batch "$WORK/plan.yaml" --out "$WORK/plan" --jobs 2
  rehearsed plan "$PYTHON" benchmarks/gpu_rehearsal.py check-plan "$WORK/plan"
  step test_gpu 300 "$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py
  log "methods: GPU only (qlora and lora_8bit need CUDA)"; record methods skipped 0 0 "GPU only"
  log "speed_1.5b: GPU only (the speed_0.5b command at the 1.5B shape)"; record speed_1.5b skipped 0 0 "GPU only"
  ;;
gpu)
  step shapes "$(cap shapes)" bash -c 'shapes "$@"' shapes qwen2.5-0.5b smollm2-135m
  step speed_0.5b "$(cap speed_0.5b)" "$PYTHON" benchmarks/train_speed.py --model "$SHAPES/qwen2.5-0.5b" \
    "${SPEED_ARGS[@]}" --timeout 90 --budget $(( $(cap speed_0.5b) - 10 )) --logs "$WORK/logs/speed_0.5b" \
    --out "$WORK/speed_0.5b.json"
  # The five training notebooks at once share the GPU, then 05 (it reads their adapters): correctness here, speed
  # above. Unsloth writes its compiled cache with os.replace, so the kernels sharing it do not corrupt it.
  step plan "$(cap plan)" "$PYTHON" -m kit batch notebooks/batches/gpu.yaml --out "$WORK/plan" --jobs 5
  step test_gpu "$(cap test_gpu)" "$PYTHON" -m pytest -q -x -rs -p no:cacheprovider tests/test_gpu.py
  left=$(( BUDGET_S - ($(date +%s) - START) ))
  if (( left >= 60 )); then  # notebook 06 at small sizes: every method, qlora and lora_8bit included
    step methods "$(( left < 120 ? left : 120 ))" "$PYTHON" -m kit batch notebooks/batches/methods_gpu.yaml \
      --out "$WORK/methods"
  else
    log "SKIP methods: ${left}s left (needs 60)"; record methods skipped 0 0 "time budget spent"
  fi
  left=$(( BUDGET_S - ($(date +%s) - START) ))
  if (( left >= 100 )); then
    step speed_1.5b "$left" bash -c 'speed_large "$1"' speed_large "$(( left - 30 ))"
  else
    log "SKIP speed_1.5b: ${left}s left (needs 100)"; record speed_1.5b skipped 0 0 "time budget spent"
  fi
  ;;
esac
finish $(( FAILED > 0 ? 1 : 0 ))
