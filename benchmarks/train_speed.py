"""LoRA training speed and memory: the kit's Unsloth path against plain transformers + PEFT + TRL, same work.

Both paths train the same model folder on the same data (fixed-length random token ids, so no padding,
or the notebook's own Alpaca prompt/completion records), with the same batch, sequence length, LoRA
configuration (r, alpha, dropout 0, every attention and MLP projection), gradient checkpointing and step
count. Each path runs in its own process: importing Unsloth patches transformers, PEFT and TRL, so the
plain path must never see it.

Paths:
  kit_lora16    kit.training.methods.load_for_training + kit.training.config.sft_config + TRL SFTTrainer (what notebook 01 does)
  kit_qlora4    the same with load_in_4bit=True (where bitsandbytes runs: CUDA)
  plain_lora16  AutoModelForCausalLM (SDPA) + peft.get_peft_model + TRL SFTTrainer, in the same dtype
  plain_qlora4  the same on a bitsandbytes NF4 base (CUDA)

Warm-up steps are excluded. Tokens/s counts the tokens of the measured steps (non-padding tokens with
``--data alpaca``). Memory: peak allocated and reserved CUDA memory during training, or the peak RSS on CPU.
MFU: ``6 * N * tokens/s + 12 * layers * hidden * seq_len * tokens/s`` (model FLOPs, the PaLM convention:
recomputation and LoRA's skipped weight gradients are not counted) divided by the device's peak FLOP/s.
``--dtype auto`` (the default) is :func:`kit.runtime.precision.resolve_dtype`'s choice, the notebooks' own. The JSON is
rewritten after every path, so a run cut short keeps what it measured; it records the processor (PyTorch's CPU
capability, native bf16, AMX; the GPU name on CUDA), the package versions and each path's timings.

  python benchmarks/train_speed.py --smoke                                  # seconds on CPU
  python benchmarks/train_speed.py --shape qwen2.5-0.5b --seq-len 1024 --out speed.json
  python benchmarks/train_speed.py --shape qwen2.5-0.5b --seq-len 1024 --budget 140 --out speed.json  # all paths in 140 s
  python benchmarks/train_speed.py --model .cache/smollm2 --paths kit_lora16,plain_lora16 --out cpu.json
  python benchmarks/train_speed.py --shape qwen2.5-0.5b --search-seq-len 20 --paths kit_qlora4   # longest in 20 GB
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Pairs first: when time runs out after two paths, one kit/plain ratio is already measured.
PATHS = ("kit_lora16", "plain_lora16", "kit_qlora4", "plain_qlora4")
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Dense bf16 peak FLOP/s by GPU name (vendor data sheets, SXM where it matters).
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                   "T4": 65.0, "V100": 125.0, "RTX 4090": 165.0}
RESULT_TAG = "TRAIN_SPEED_RESULT "


# ---------------------------------------------------------------------------------------------------- worker
def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _device_peak_flops(dtype_name: str) -> tuple[float | None, str]:
    """Peak FLOP/s of this device for ``dtype_name`` and how it was found (a CPU figure is an estimate)."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        for key, tflops in GPU_PEAK_TFLOPS.items():
            if key in name:
                return tflops * 1e12, f"{key} dense bf16 data-sheet peak {tflops} TFLOP/s"
        return None, f"no peak figure known for {name}"
    flags, mhz = set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    if not mhz:
        return None, "CPU clock unknown"
    threads = torch.get_num_threads()
    if dtype_name == "bfloat16" and "amx_bf16" in flags:
        per_cycle, unit = 1024, "AMX bf16 (1024 FLOP/cycle/core)"
    elif "avx512f" in flags:
        per_cycle, unit = (128 if dtype_name == "bfloat16" and "avx512_bf16" in flags else 64), "AVX-512 2 FMA units"
    else:
        per_cycle, unit = 32, "AVX2 2 FMA units"
    return threads * mhz * 1e6 * per_cycle, f"estimate: {threads} threads x {mhz:.0f} MHz x {per_cycle} FLOP/cycle ({unit})"


def _dtype_reason(dtype: str | None) -> str | None:
    """Why ``dtype`` resolves as it does here (:func:`kit.runtime.precision.resolve_dtype`)."""
    try:
        from kit.runtime.precision import resolve_dtype

        return resolve_dtype(dtype)[1]
    except Exception as exc:  # a record, never a reason to lose the measurement
        return f"unknown ({type(exc).__name__}: {exc})"


def processor_info() -> dict[str, Any]:
    """What this machine computes with: PyTorch's CPU dispatch level, native bf16 and AMX, and the GPU on CUDA."""
    import torch

    info: dict[str, Any] = {"cpu_capability": str(torch.backends.cpu.get_cpu_capability())}
    for key, probe in (("avx512_bf16", "_is_avx512_bf16_supported"), ("amx_tile", "_is_amx_tile_supported")):
        check = getattr(torch.cpu, probe, None)
        info[key] = bool(check()) if callable(check) else None  # None: this torch cannot tell
    info["cpu_flags_bf16"] = sorted(_cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile"})
    info["cuda"] = torch.cuda.is_available()
    if info["cuda"]:
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                    gpu_capability=f"{props.major}.{props.minor}", gpu_bf16=bool(torch.cuda.is_bf16_supported()),
                    torch_cuda=torch.version.cuda)
    return info


def package_versions() -> dict[str, str | None]:
    """Python, torch and the training stack's versions (package metadata: nothing imported)."""
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "unsloth", "unsloth_zoo",
                 "bitsandbytes", "triton", "xformers"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _fixed_dataset(vocab: int, n: int, seq_len: int, seed: int) -> Any:
    """``n`` rows of ``seq_len`` random token ids (below the tokenizer's size, so any tokenizer decodes them)."""
    import torch
    from datasets import Dataset

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (n, seq_len), generator=generator).tolist()
    return Dataset.from_dict({"input_ids": ids})


def _alpaca_dataset(tokenizer: Any) -> Any:
    """Notebook 01's data: the Alpaca sample rendered as prompt/completion pairs (loss on the completion)."""
    from kit.data import load_alpaca
    from kit.formatting.prompts import alpaca_formatter

    dataset, _report = load_alpaca(str(ROOT / "data" / "alpaca" / "alpaca_en.json"))
    return dataset.map(alpaca_formatter(tokenizer, split=True), batched=True, remove_columns=dataset.column_names)


class _RssSampler:
    """Peak resident memory of this process while training (CPU), sampled every 20 ms."""

    def __init__(self) -> None:
        import psutil

        self._process, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self) -> _RssSampler:
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _load(cfg: dict[str, Any]) -> tuple[Any, Any, str]:
    """The model with LoRA attached, its tokenizer, and the dtype it computes in, for ``cfg['path']``."""
    import torch

    path, gc = cfg["path"], cfg["gradient_checkpointing"]
    four_bit = path.endswith("qlora4")
    if path.startswith("kit"):
        from kit.training.methods import load_for_training  # imports unsloth first

        model, tokenizer, summary = load_for_training(
            cfg["model"], max_seq_length=cfg["seq_len"], load_in_4bit=four_bit, lora_r=cfg["lora_r"],
            lora_alpha=cfg["lora_alpha"], dtype=cfg["dtype"], seed=cfg["seed"],
            use_gradient_checkpointing="unsloth" if gc else False,
        )
        return model, tokenizer, summary.dtype
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kit.runtime.precision import resolve_dtype

    dtype = getattr(torch, resolve_dtype(cfg["dtype"])[0])  # "auto": the kit's own choice, so both paths match
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": "sdpa"}
    if four_bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": 0}
    elif torch.cuda.is_available():
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(cfg["model"], **kwargs)
    model.config.use_cache = False
    if four_bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gc)
    model = get_peft_model(model, LoraConfig(r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], lora_dropout=0.0,
                                             target_modules=TARGET_MODULES, bias="none", task_type="CAUSAL_LM"))
    tokenizer = AutoTokenizer.from_pretrained(cfg["model"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, str(dtype).replace("torch.", "")


def _config(cfg: dict[str, Any], out_dir: str, compute_dtype: str) -> Any:
    """The SFTConfig of a path: the kit's ``sft_config`` or plain TRL with the same numbers."""
    import torch

    common = dict(per_device_train_batch_size=cfg["batch"], gradient_accumulation_steps=cfg["grad_accum"],
                  max_steps=cfg["warmup"] + cfg["steps"], learning_rate=2e-4, warmup_steps=0, logging_steps=1,
                  seed=cfg["seed"], report_to="none", save_strategy="no", disable_tqdm=True,
                  include_num_input_tokens_seen="non_padding", dataloader_num_workers=0)
    autocast = cfg.get("autocast", "auto")
    if cfg["path"].startswith("kit"):
        from kit.training.config import sft_config

        if autocast != "auto":  # override the kit's precision_flags (an experiment, not what notebooks do)
            on = autocast == "on" and compute_dtype in ("bfloat16", "float16")
            common.update(bf16=on and compute_dtype == "bfloat16", fp16=on and compute_dtype == "float16")
        return sft_config(out_dir, max_seq_length=cfg["seq_len"], **common)
    from trl import SFTConfig

    on_gpu = torch.cuda.is_available()
    # auto: autocast in the model's 16-bit dtype, as the kit's precision_flags does; off: none (the model's own dtype)
    autocast = compute_dtype in ("bfloat16", "float16") and autocast != "off"
    return SFTConfig(output_dir=out_dir, max_length=cfg["seq_len"], gradient_checkpointing=cfg["gradient_checkpointing"],
                     gradient_checkpointing_kwargs={"use_reentrant": False},
                     bf16=autocast and compute_dtype == "bfloat16", fp16=autocast and compute_dtype == "float16",
                     optim="adamw_torch_fused", use_cpu=not on_gpu, **common)


def run_worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """Train one path for ``warmup + steps`` steps and measure the last ``steps``."""
    import torch

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    path = cfg["path"]
    if path.endswith("qlora4"):
        if not torch.cuda.is_available():
            return {"path": path, "skipped": "bitsandbytes 4-bit needs CUDA here (Unsloth's CPU fallback would load 16-bit)"}
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            return {"path": path, "skipped": "bitsandbytes is not installed"}
    if path.startswith("kit"):
        import unsloth  # noqa: F401  -- before trl, as in every notebook
    from transformers import TrainerCallback
    from trl import SFTTrainer

    load_start = time.perf_counter()
    model, tokenizer, compute_dtype = _load(cfg)
    load_s = time.perf_counter() - load_start
    if cfg["data"] == "alpaca":
        train = _alpaca_dataset(tokenizer)
    else:
        n = cfg["batch"] * cfg["grad_accum"] * (cfg["warmup"] + cfg["steps"])
        train = _fixed_dataset(len(tokenizer), n, cfg["seq_len"], cfg["seed"])

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[tuple[float, int]] = []
            self.cpu: list[float] = []  # process CPU seconds, all threads: less sensitive to a busy shared CPU

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ends.append((time.perf_counter(), 0))
            self.cpu.append(time.process_time())

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.ends.append((time.perf_counter(), int(state.num_input_tokens_seen)))
            self.cpu.append(time.process_time())

    trainer_cls, loss_note = SFTTrainer, "TRL SFTTrainer loss"
    if not path.startswith("kit"):
        from trl.trainer import utils as trl_utils

        if getattr(trl_utils, "_ChunkedLogProbFunction", 1) is None:
            # Stock TRL 1.15 computes the SFT loss through a Triton-only fused LM head (None without Triton, so
            # CPU training fails): use transformers' own cross-entropy on the same labels instead.
            from transformers import Trainer

            class PlainLossSFTTrainer(SFTTrainer):
                def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False,
                                 num_items_in_batch: Any = None) -> Any:
                    return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

            trainer_cls, loss_note = PlainLossSFTTrainer, "transformers cross-entropy (TRL's fused LM head needs Triton)"
    timer = Timer()
    with tempfile.TemporaryDirectory() as out_dir:
        trainer = trainer_cls(model=model, processing_class=tokenizer, train_dataset=train,
                             args=_config(cfg, out_dir, compute_dtype), callbacks=[timer])
        args = trainer.args
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        with _RssSampler() as rss:
            trainer.train()
    (t0, tok0), (t1, tok1) = timer.ends[cfg["warmup"]], timer.ends[-1]
    seconds, tokens = t1 - t0, tok1 - tok0
    cpu_seconds = timer.cpu[-1] - timer.cpu[cfg["warmup"]]
    measured = timer.ends[cfg["warmup"]:]
    step_s = [round(b[0] - a[0], 3) for a, b in itertools.pairwise(measured)]
    if cfg["data"] == "fixed":
        tokens = cfg["batch"] * cfg["grad_accum"] * cfg["seq_len"] * cfg["steps"]  # exact: no padding, no truncation
    tokens_per_s = tokens / seconds if seconds > 0 else None
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    conf = base.config
    n_params = sum(p.numel() * (2 if type(p).__name__ == "Params4bit" else 1) for p in base.parameters())
    flops_per_token = 6 * n_params + 12 * conf.num_hidden_layers * conf.hidden_size * cfg["seq_len"]
    peak, peak_source = _device_peak_flops(compute_dtype)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    result: dict[str, Any] = {
        "path": path,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "compute_dtype": compute_dtype,
        "dtype_asked": cfg["dtype"] or "auto",
        "dtype_reason": _dtype_reason(cfg["dtype"]),
        "trainer_bf16": bool(args.bf16), "trainer_fp16": bool(args.fp16),
        "loss": loss_note,
        "optim": str(getattr(args.optim, "value", args.optim)),
        "gradient_checkpointing": bool(getattr(base, "is_gradient_checkpointing", False)),
        "threads": torch.get_num_threads(),
        "parameters": n_params,
        "load_s": round(load_s, 2),
        "measured_steps": cfg["steps"], "warmup_steps": cfg["warmup"],
        "measured_s": round(seconds, 3),
        "s_per_step": round(seconds / cfg["steps"], 3),
        "tokens": tokens,
        "tokens_per_s": None if tokens_per_s is None else round(tokens_per_s, 2),
        "step_s": step_s,
        # The fastest measured step: on a shared CPU the least disturbed estimate of what the path can do.
        "best_step_tokens_per_s": round(tokens / len(step_s) / min(step_s), 2) if step_s and min(step_s) > 0 else None,
        "cpu_s": round(cpu_seconds, 3),
        "tokens_per_cpu_s": round(tokens / cpu_seconds, 2) if cpu_seconds > 0 else None,
        "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
        "mfu": None if (peak is None or tokens_per_s is None) else round(tokens_per_s * flops_per_token / peak, 5),
        "mfu_formula": f"tokens/s x (6 x {n_params} + 12 x {conf.num_hidden_layers} x {conf.hidden_size} x {cfg['seq_len']}) / peak",
        "peak_flops": peak, "peak_flops_source": peak_source,
    }
    if torch.cuda.is_available():
        result["peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        result["peak_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
        result["peak_memory_mb"] = result["peak_reserved_mb"]
        result["memory_kind"] = "cuda reserved"
    else:
        result["peak_rss_mb"] = round(rss.peak / 2**20, 1)
        result["peak_memory_mb"] = result["peak_rss_mb"]
        result["memory_kind"] = "rss"
    return result


# ---------------------------------------------------------------------------------------------------- driver
def _spawn(cfg: dict[str, Any], timeout: float, log: Path | None) -> dict[str, Any]:
    """Run one path in a fresh interpreter; its JSON result, or what went wrong."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "UNSLOTH_DISABLE_STATISTICS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "KIT_HEADLESS": "1"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        if log:
            log.write_text(out, encoding="utf-8")
        return {"path": cfg["path"], "error": f"timed out after {timeout:.0f} s"}
    if log:
        log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr, encoding="utf-8")
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
            result["wall_s"] = round(time.perf_counter() - start, 1)
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    oom = "out of memory" in (proc.stderr + proc.stdout).lower()
    return {"path": cfg["path"], "error": ("out of memory: " if oom else "") + " | ".join(tail), "oom": oom}


def _ratios(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """kit ÷ plain for each pair that both ran: tokens/s (above 1 = kit faster) and peak memory (below 1 = kit smaller)."""
    ratios = {}
    for kind in ("lora16", "qlora4"):
        kit, plain = results.get(f"kit_{kind}", {}), results.get(f"plain_{kind}", {})
        if kit.get("tokens_per_s") and plain.get("tokens_per_s"):
            ratios[kind] = {
                "tokens_per_s_ratio": round(kit["tokens_per_s"] / plain["tokens_per_s"], 3),
                "peak_memory_ratio": round(kit["peak_memory_mb"] / plain["peak_memory_mb"], 3),
                "tokens_per_cpu_s_ratio": (round(kit["tokens_per_cpu_s"] / plain["tokens_per_cpu_s"], 3)
                                           if kit.get("tokens_per_cpu_s") and plain.get("tokens_per_cpu_s") else None),
                "memory_kind": kit["memory_kind"],
            }
    return ratios


def search_seq_len(base: dict[str, Any], path: str, budget_gb: float, timeout: float, logs: Path | None,
                   max_trials: int = 6) -> dict[str, Any]:
    """Longest sequence length (a multiple of 256) whose training fits ``budget_gb``: doubling, then bisection."""
    trials: list[dict[str, Any]] = []

    def fits(seq_len: int) -> bool:
        cfg = {**base, "path": path, "seq_len": seq_len, "warmup": 1, "steps": 1, "data": "fixed"}
        result = _spawn(cfg, timeout, logs / f"search_{path}_{seq_len}.log" if logs else None)
        ok = "error" not in result and "skipped" not in result and result["peak_memory_mb"] <= budget_gb * 1024
        trials.append({"seq_len": seq_len, "fits": ok, "peak_memory_mb": result.get("peak_memory_mb"),
                       "error": result.get("error") or result.get("skipped")})
        return ok

    good, bad, seq = 0, None, max(256, base["seq_len"])
    while len(trials) < max_trials and bad is None:
        if fits(seq):
            good, seq = seq, seq * 2
        else:
            bad = seq
    while bad is not None and bad - good > 256 and len(trials) < max_trials:
        mid = (good + bad) // 2 // 256 * 256
        if fits(mid):
            good = mid
        else:
            bad = mid
    return {"path": path, "budget_gb": budget_gb, "longest_fitting_seq_len": good or None,
            "first_failing_seq_len": bad, "trials": trials}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help="model folder (default: build --shape under .cache/shapes/)")
    parser.add_argument("--shape", default="smollm2-135m", help="random-init shape when --model is not given")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    parser.add_argument("--data", choices=("fixed", "alpaca"), default="fixed",
                        help="fixed: random ids of exactly --seq-len tokens; alpaca: notebook 01's records (padded per batch)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5, help="measured steps")
    parser.add_argument("--warmup", type=int, default=2, help="steps run first and not timed")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--dtype", default=None,
                        help="model dtype: auto (the default; --smoke: float32): kit.runtime.precision.resolve_dtype, bf16 where "
                             "native; or bfloat16, float16, float32")
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--autocast", choices=("auto", "on", "off"), default="auto",
                        help="auto: the kit's precision_flags / autocast in a 16-bit model's dtype; off: none (experiments)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's)")
    parser.add_argument("--seed", type=int, default=3407)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per path")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for all paths together: each path gets what is left, none starts under 20 s")
    parser.add_argument("--search-seq-len", type=float, metavar="GB", help="find the longest seq len fitting GB per path")
    parser.add_argument("--search-trials", type=int, default=6, help="most runs per path in --search-seq-len (default 6)")
    parser.add_argument("--logs", help="folder for each worker's raw output")
    parser.add_argument("--out", help="write the JSON result here")
    parser.add_argument("--smoke", action="store_true", help="tiny model, 2 paths, a few steps: seconds on CPU")
    parser.add_argument("--dry-run", action="store_true", help="check the arguments and print what would run; build and train nothing")
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_TAG + json.dumps(run_worker(json.loads(args.worker))), flush=True)
        return 0

    if args.smoke:
        from kit.builders.tiny import ensure_tiny_model

        args.model = args.model or str(ensure_tiny_model())
        args.paths, args.seq_len, args.steps, args.warmup, args.batch = "kit_lora16,plain_lora16", 64, 2, 1, 2
        args.dtype = args.dtype or "float32"
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    if args.model is None:
        from kit.builders.shapes import build_random_model, shape

        shape(args.shape)  # an unknown name fails here, also in a dry run
        target = ROOT / ".cache" / "shapes" / args.shape
        if not (target / "config.json").is_file() and not args.dry_run:
            build_random_model(target, args.shape)
        args.model = str(target)
    logs = Path(args.logs) if args.logs else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    base = {"model": args.model, "seq_len": args.seq_len, "batch": args.batch, "grad_accum": args.grad_accum,
            "steps": args.steps, "warmup": args.warmup, "lora_r": args.lora_r, "lora_alpha": args.lora_alpha,
            "dtype": args.dtype or "auto", "gradient_checkpointing": not args.no_gradient_checkpointing, "autocast": args.autocast,
            "threads": args.threads, "seed": args.seed, "data": args.data}
    report: dict[str, Any] = {"format": "kit-train-speed/1", "config": base,
                              "host": {"cpu_count": os.cpu_count(),
                                       "loadavg_start": os.getloadavg()},
                              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "results": {}}
    started = time.perf_counter()
    if args.dry_run:
        print(json.dumps({"dry_run": True, "paths": paths, "config": base,
                          "search_seq_len_gb": args.search_seq_len, "out": args.out}, indent=2))
        return 0
    import torch

    report["host"]["cuda"] = torch.cuda.is_available()
    report["host"]["processor"] = processor_info()
    report["versions"] = package_versions()
    report["dtype"] = {"asked": base["dtype"], "reason": _dtype_reason(base["dtype"])}

    def write(final: bool = False) -> None:
        """The report as it stands (after every path), so a run cut short keeps what it measured."""
        report["complete"] = final
        report["wall_s"] = round(time.perf_counter() - started, 1)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(args.out).with_suffix(".json.tmp")
            tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            tmp.replace(args.out)

    write()
    if args.search_seq_len:
        report["seq_len_search"] = [search_seq_len(base, p, args.search_seq_len, args.timeout, logs, args.search_trials)
                                    for p in paths]
    else:
        for path in paths:
            timeout = args.timeout
            if args.budget is not None:
                timeout = min(timeout, args.budget - (time.perf_counter() - started))
                if timeout < 20:
                    report["results"][path] = {"path": path, "skipped": f"time budget of {args.budget:.0f} s spent"}
                    print(f"[train_speed] {path}: skipped, time budget of {args.budget:.0f} s spent", flush=True)
                    write()
                    continue
            result = _spawn({**base, "path": path}, timeout, logs / f"{path}.log" if logs else None)
            report["results"][path] = result
            report["ratios"] = _ratios(report["results"])
            write()
            shown = (f"{result['tokens_per_s']} tokens/s, {result['s_per_step']} s/step, peak {result['memory_kind']} "
                     f"{result['peak_memory_mb']} MiB, dtype {result['compute_dtype']}, mfu {result['mfu']}"
                     if "tokens_per_s" in result else result.get("skipped") or result.get("error"))
            print(f"[train_speed] {path}: {shown}", flush=True)
        report["ratios"] = _ratios(report["results"])
        for kind, ratio in report["ratios"].items():
            print(f"[train_speed] {kind} kit/plain: tokens/s x{ratio['tokens_per_s_ratio']}, "
                  f"peak memory x{ratio['peak_memory_ratio']}", flush=True)
    report["host"]["loadavg_end"] = os.getloadavg()
    write(final=True)
    failed = [p for p, r in report["results"].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
