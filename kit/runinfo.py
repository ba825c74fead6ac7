"""What a run used and produced: device, memory, timing, data files read, and the ``metrics.json`` file.

Every notebook ends by calling :func:`write_metrics`; the batch runner reads that file into its
manifest and summary, so its schema (below) is the contract between notebooks and the runner::

    {"notebook": str, "device": {...}, "seed": int, "steps": int, "runtime_s": float,
     "loss_trace": [{"step": int, "loss": float}, ...], "final_loss": float | None,
     "peak_memory_mb": float, "metrics": {...}, "data_files": [{"path", "sha256", "bytes"}],
     "parameters": {...}, "eval": {...}}

``eval`` is the before/after block on held-out items (:mod:`kit.evaluation.block`): ``split``, ``n``, ``before``,
``after`` and ``gain`` (per metric ``{"value", "ci95": [lo, hi]}``); absent when a run passed none.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

_DATA_FILES: dict[str, None] = {}


def is_headless() -> bool:
    """True when nobody watches the kernel live (``kit batch``, plain papermill, nbconvert): print lines, not
    progress bars or token streams. What is detected, and how, is in :mod:`kit.runtime.headless`."""
    from kit.runtime.headless import is_headless as detect

    return detect()


def is_main_process() -> bool:
    """False on the non-main processes of ``accelerate launch`` / ``torchrun`` (``RANK`` > 0): only rank 0 writes."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


def record_data_file(path: str | os.PathLike[str]) -> None:
    """Remember that this process read ``path`` (loaders call this), for the run manifest."""
    _DATA_FILES[str(Path(path).resolve())] = None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_files_read() -> list[dict[str, Any]]:
    """Every recorded data file with its sha256 and size, in the order first read."""
    files = []
    for path in _DATA_FILES:
        if os.path.isfile(path):
            files.append({"path": path, "sha256": sha256_file(path), "bytes": os.path.getsize(path)})
    return files


def device_info() -> dict[str, Any]:
    """The device training runs on: CUDA name and memory when a GPU is visible, else the CPU."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return {
            "type": "cuda",
            "name": props.name,
            "memory_gb": round(props.total_memory / 2**30, 2),
            "bf16": bool(torch.cuda.is_bf16_supported()),
            "count": torch.cuda.device_count(),
            **_precision_choice(),
        }
    import psutil

    from kit.runtime.precision import cpu_precision

    info = {
        "type": "cpu",
        "name": _cpu_name(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 2),
        "threads": torch.get_num_threads(),
        **cpu_precision(),
    }
    return {**info, **_precision_choice()}


def _precision_choice() -> dict[str, Any]:
    """The dtype the last model load chose and why (``kit.training.model.last_precision``), when a model was loaded."""
    choice = getattr(sys.modules.get("kit.training.model"), "last_precision", None)
    return {"dtype": choice["dtype"], "dtype_reason": choice["reason"]} if choice else {}


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo on Linux (``platform.processor()`` is often empty there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_memory_mb() -> float:
    """Peak memory so far: CUDA max allocated on GPU, else this process's peak RSS (MiB)."""
    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss_kb / 1024 if sys.platform != "darwin" else rss_kb / 2**20, 1)


def memory_stats(label: str = "") -> dict[str, Any]:
    """Print and return a one-line memory snapshot: GPU reserved/peak on CUDA, process RSS on CPU."""
    import psutil
    import torch

    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        stats = {
            "device": torch.cuda.get_device_name(0),
            "reserved_gb": round(torch.cuda.max_memory_reserved() / 2**30, 3),
            "peak_allocated_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3),
            "total_gb": round(total, 2),
        }
    else:
        stats = {
            "device": "cpu",
            "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
            "peak_rss_mb": peak_memory_mb(),
        }
    print(f"[memory{' ' + label if label else ''}] " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    return stats


class Stopwatch:
    """Wall-clock timer: ``with Stopwatch() as sw: ...; sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def loss_trace(log_history: list[dict[str, Any]], key: str = "loss") -> list[dict[str, Any]]:
    """The ``(step, loss)`` points from a Trainer's ``state.log_history``."""
    return [{"step": int(e["step"]), "loss": float(e[key])} for e in log_history if key in e and "step" in e]


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(
    output_dir: str | os.PathLike[str],
    *,
    notebook: str,
    trainer: Any = None,
    runtime_s: float | None = None,
    seed: int | None = None,
    parameters: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    loss_key: str = "loss",
    eval: dict[str, Any] | None = None,  # named after the key it is written under
    grpo: dict[str, Any] | None = None,  # notebook 03's reward curves and audit (kit.evaluation.grpo_report.grpo_block)
) -> Path:
    """Write ``metrics.json`` to ``output_dir`` (schema in the module docstring) and return its path.

    On a non-main process of a multi-process launch it writes nothing (the path is still returned)."""
    if not is_main_process():
        return Path(output_dir) / "metrics.json"
    trace = loss_trace(trainer.state.log_history, loss_key) if trainer is not None else []
    steps = int(trainer.state.global_step) if trainer is not None else 0
    payload = {
        "notebook": notebook,
        "device": device_info(),
        "seed": seed,
        "steps": steps,
        "runtime_s": None if runtime_s is None else round(runtime_s, 3),
        "loss_trace": trace,
        "final_loss": trace[-1]["loss"] if trace else None,
        "peak_memory_mb": peak_memory_mb(),
        "metrics": {k: _finite_or_none(v) for k, v in (metrics or {}).items()},
        "data_files": data_files_read(),
        "parameters": parameters or {},
        "python": platform.python_version(),
    }
    if eval is not None:
        missing = [k for k in ("split", "n", "before", "after", "gain") if k not in eval]
        if missing:
            from kit.errors import KitError

            raise KitError(f"write_metrics: the eval block lacks {missing}; build it with kit.evaluation.block.eval_block")
        payload["eval"] = eval
    if grpo is not None:
        payload["grpo"] = grpo
    from kit.runtime.redact import redact, secret_values

    payload = redact(payload, secret_values(parameters))  # parameters such as hf_token never reach the file
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(f"[metrics] {path}: {steps} steps, final loss {payload['final_loss']}, peak {payload['peak_memory_mb']} MiB")
    return path
