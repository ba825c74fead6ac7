"""Notebook 06's engine: train each fine-tuning method on the same data, model, seed and token budget, and compare.

Each method loads a fresh base model (never stacked on the previous one), trains, is scored on the same held-out
records, saves the method's way (:mod:`kit.training.methods`) and is freed before the next. The base model's "before"
answers are scored once and paired with every method's "after" (:func:`kit.evaluation.block.table_block`). A method
that cannot run here is a "skipped: ..." row; one that fails while running is a "failed: ..." row: never replaced.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kit.errors import KitError
from kit.training.methods import METHODS, get_method, learning_rate_for, why_not

SKIP_NOTE = "skipped: needs CUDA + bitsandbytes"


class PeakMemory:
    """Peak memory inside a ``with`` block (MiB): ``torch.cuda.max_memory_allocated`` on a GPU (reset on entry),
    else this process's RSS sampled every 20 ms (``ru_maxrss`` never falls, so it cannot tell methods apart)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self.kind = "cpu_rss"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        import psutil
        import torch

        if torch.cuda.is_available():
            self.kind = "cuda_max_allocated"
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_mb = torch.cuda.memory_allocated() / 2**20
            return self
        process = psutil.Process()
        self.start_mb = self.peak_mb = process.memory_info().rss / 2**20

        def sample() -> None:
            while not self._stop.wait(self.interval_s):
                self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import psutil
        import torch

        if self.kind == "cuda_max_allocated":
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, psutil.Process().memory_info().rss / 2**20)


def parse_methods(methods: Any) -> list[str]:
    """The plan's ``methods`` (a list, or a comma-separated string) as known method names, in order, no repeats."""
    items = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods or [])
    if not items:
        raise KitError(f"methods is empty; name at least one of {', '.join(METHODS)}")
    names = [get_method(str(m)).name for m in items if str(m).strip()]
    return list(dict.fromkeys(names))


def plan(methods: Any, learning_rates: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per method: its learning rate and whether it runs here, printed one line each before anything loads."""
    unknown = sorted(set(learning_rates or {}) - set(METHODS))
    if unknown:
        raise KitError(f"learning_rates names unknown method(s) {unknown}; the methods are {', '.join(METHODS)}")
    rows = []
    for name in parse_methods(methods):
        reason = why_not(name)
        row = {"method": name, "learning_rate": learning_rate_for(name, learning_rates),
               "summary": get_method(name).summary, "runs": reason is None, "reason": reason}
        status = "runs here" if reason is None else (SKIP_NOTE if get_method(name).needs_bnb else f"skipped: {reason}")
        print(f"[methods] {name:<10} lr {row['learning_rate']:<8g} {status}")
        rows.append(row)
    return rows


def _free(*objects: Any) -> None:
    """Drop ``objects``, collect, and hand freed heap pages back to the OS (glibc ``malloc_trim``), so the next
    method's RSS starts near the process's base instead of on top of the last method's freed memory."""
    del objects
    gc.collect()
    try:
        import ctypes
        import sys

        if sys.platform.startswith("linux"):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def score_base(model_name: str, eval_records: Any, template: str, *, max_seq_length: int, dtype: str | None,
               max_new_tokens: int, batch_size: int = 16) -> Any:
    """The base model's greedy answers to the held-out records, scored once (every method's "before")."""
    from kit.evaluation.scoring import sft_eval
    from kit.training.model import for_inference, load_model

    model, tokenizer = load_model(model_name, max_seq_length=max_seq_length, load_in_4bit=False, dtype=dtype)
    for_inference(model)
    table = sft_eval(model, tokenizer, eval_records, template, max_new_tokens=max_new_tokens,
                     batch_size=batch_size, label="before (base)")
    _free(model, tokenizer)
    return table


def run_method(name: str, *, model_name: str, train_records: Any, eval_records: Any, before: Any, template: str,
               output_dir: str, learning_rate: float, max_steps: int, per_device_train_batch_size: int,
               gradient_accumulation_steps: int, max_seq_length: int, dtype: str | None, seed: int,
               lora_r: int = 16, lora_alpha: int = 16, eval_max_new_tokens: int = 48,
               eval_batch_size: int = 16) -> dict[str, Any]:
    """Load a fresh base, put ``name`` on it, train, score, save, free; the method's row (with its eval block)."""
    from trl import SFTTrainer

    from kit.evaluation.block import table_block
    from kit.evaluation.scoring import SFT_METRICS, sft_eval
    from kit.formatting.chat_format import sft_dataset
    from kit.runinfo import Stopwatch, loss_trace
    from kit.training import methods
    from kit.training.config import seed_everything, sft_config
    from kit.training.model import describe, for_inference, for_training, load_model
    from kit.training.trainlog import quiet

    method = methods.check_method(name)
    _free()
    seed_everything(seed)
    folder = Path(output_dir) / method.name
    with PeakMemory() as memory:
        model, tokenizer = load_model(model_name, max_seq_length=max_seq_length, dtype=dtype,
                                      **methods.load_kwargs(method.name))
        model = methods.build(model, method.name, model_name=model_name, r=lora_r, alpha=lora_alpha, seed=seed)
        summary = describe(model, model_name)
        print(f"[{method.name}] {summary}")
        warning = methods.size_warning(method.name, summary.total_params, summary.dtype)
        if warning:
            print(warning)
        train_dataset = sft_dataset(tokenizer, train_records, template, max_seq_length=max_seq_length)
        for_training(model)
        trainer = SFTTrainer(
            model=model, processing_class=tokenizer, train_dataset=train_dataset,
            args=sft_config(str(folder), max_seq_length=max_seq_length, max_steps=max_steps,
                            per_device_train_batch_size=per_device_train_batch_size,
                            gradient_accumulation_steps=gradient_accumulation_steps, learning_rate=learning_rate,
                            seed=seed, **methods.trainer_overrides(method.name)),
        )
        quiet(trainer, "sft")
        with Stopwatch() as clock:
            trainer.train()
    history = list(trainer.state.log_history)
    tokens = max((float(e["num_tokens"]) for e in history if "num_tokens" in e), default=0.0)
    for_inference(model)
    after = sft_eval(model, tokenizer, eval_records, template, max_new_tokens=eval_max_new_tokens,
                     batch_size=eval_batch_size, label=f"after ({method.name})")
    block = table_block(before, after, metrics=SFT_METRICS)
    size = methods.save(model, tokenizer, str(folder), method.name)
    trace = loss_trace(history)
    row = {
        "method": method.name, "status": "completed", "saves": method.saves, "learning_rate": learning_rate,
        "trainable_params": summary.trainable_params, "total_params": summary.total_params,
        "trainable_pct": round(100 * summary.trainable_share, 4), "dtype": summary.dtype,
        "peak_memory_mb": round(memory.peak_mb, 1), "memory_at_start_mb": round(memory.start_mb, 1),
        "memory_kind": memory.kind, "train_s": round(clock.seconds, 2), "steps": int(trainer.state.global_step),
        "train_tokens": int(tokens), "tokens_per_s": round(tokens / clock.seconds, 1) if clock.seconds else None,
        "final_loss": trace[-1]["loss"] if trace else None, "loss_trace": trace,
        "size_on_disk_mb": round(size / 2**20, 3), "saved_to": str(folder),
        "eval": block,
    }
    _free(model, tokenizer, trainer, train_dataset)
    return row


def compare(rows_plan: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`run_method` for every method of :func:`plan` that runs here; skipped and failed ones stay as rows."""
    learning_rates = {r["method"]: r["learning_rate"] for r in rows_plan}
    rows = []
    for entry in rows_plan:
        name = entry["method"]
        if not entry["runs"]:
            note = SKIP_NOTE if get_method(name).needs_bnb else f"skipped: {entry['reason']}"
            rows.append({"method": name, "status": note, "learning_rate": entry["learning_rate"]})
            continue
        print(f"\n=== {name}: {entry['summary']} (lr {entry['learning_rate']:g}) ===")
        started = time.perf_counter()
        try:
            rows.append(run_method(name, learning_rate=learning_rates[name], **kwargs))
        except KitError:
            raise
        except Exception as exc:  # one method's failure is its row, said in one line; the others still run
            line = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            print(f"[{name}] {line}")
            rows.append({"method": name, "status": line, "learning_rate": entry["learning_rate"]})
            _free()
        print(f"[{name}] {time.perf_counter() - started:.1f} s in all")
    return rows


def _gain(row: dict[str, Any], metric: str = "rouge_l") -> dict[str, Any] | None:
    block = row.get("eval") or {}
    return (block.get("gain") or {}).get(metric)


def table(rows: list[dict[str, Any]], metric: str = "rouge_l") -> Any:
    """The comparison as a pandas DataFrame, one row per method (skipped and failed ones say so)."""
    import pandas as pd

    records = []
    for row in rows:
        gain = _gain(row, metric)
        block = row.get("eval") or {}
        done = row.get("status") == "completed"
        records.append({
            "method": row["method"],
            "status": row["status"],
            "lr": row.get("learning_rate"),
            "trainable": f"{row['trainable_params']:,}" if done else "",
            "trainable_%": round(row["trainable_pct"], 3) if done else None,
            "peak_mem_MiB": row.get("peak_memory_mb"),
            "start_MiB": row.get("memory_at_start_mb"),
            "train_s": row.get("train_s"),
            "tokens/s": row.get("tokens_per_s"),
            f"{metric} before": round(block["before"][metric], 4) if done else None,
            f"{metric} after": round(block["after"][metric], 4) if done else None,
            "gain": round(gain["value"], 4) if done and gain and gain["value"] is not None else None,
            "ci95": (f"{gain['ci95'][0]:+.3f}..{gain['ci95'][1]:+.3f}" if done and gain and gain["ci95"][0] is not None
                     else ""),
            "n": block.get("n"),
            "size_MiB": row.get("size_on_disk_mb"),
        })
    return pd.DataFrame.from_records(records).set_index("method")


def advice(rows: list[dict[str, Any]], method: str = "lora", reference: str = "full", metric: str = "rouge_l") -> str:
    """The table as one sentence, from the numbers measured: ``method``'s gain and peak memory as shares of
    ``reference``'s, or why that share would mean nothing here."""
    by_name = {r["method"]: r for r in rows if r.get("status") == "completed"}
    if method not in by_name or reference not in by_name:
        missing = [m for m in (method, reference) if m not in by_name]
        return f"No {method}-vs-{reference} advice: {', '.join(missing)} did not complete in this run."
    ours, theirs = by_name[method], by_name[reference]
    g_ours, g_ref = _gain(ours, metric), _gain(theirs, metric)
    memory_share = 100 * ours["peak_memory_mb"] / theirs["peak_memory_mb"] if theirs["peak_memory_mb"] else float("nan")
    memory = (f"{memory_share:.0f}% of its peak memory ({ours['peak_memory_mb']:.0f} vs "
              f"{theirs['peak_memory_mb']:.0f} MiB, {ours['memory_kind'].replace('_', ' ')})")
    a, b = g_ours["value"], g_ref["value"]
    ci = g_ref["ci95"]
    if b is None or a is None:
        return f"No {method}-vs-{reference} advice: a {metric} gain could not be computed."
    if b <= 0 or (ci[0] is not None and ci[0] <= 0):
        return (f"On this data {reference} fine-tuning's {metric} gain ({b:+.3f}, ci95 {ci[0]:+.3f}..{ci[1]:+.3f}) is "
                f"not clearly above 0, so a share of it means little: {method} gained {a:+.3f} "
                f"(ci95 {g_ours['ci95'][0]:+.3f}..{g_ours['ci95'][1]:+.3f}) with {memory}.")
    lo, hi = g_ours["ci95"]
    if hi is not None and hi < 0:
        return (f"On this data {method} made held-out {metric} worse ({a:+.3f}, ci95 {lo:+.3f}..{hi:+.3f}) where "
                f"{reference} fine-tuning gained {b:+.3f}, with {memory}.")
    unsure = "" if lo is not None and lo > 0 else f"; {method}'s own ci95 ({lo:+.3f}..{hi:+.3f}) holds 0"
    return (f"On this data, {method} reached {100 * a / b:.0f}% of {reference} fine-tuning's {metric} gain "
            f"({a:+.3f} vs {b:+.3f}) with {memory}{unsure}.")


def plot(rows: list[dict[str, Any]], metric: str = "rouge_l", path: str | os.PathLike[str] | None = None) -> Any:
    """Each completed method's held-out gain with its ci95 as an error bar, against its peak memory."""
    from kit.plots import new_figure, show

    figure = new_figure(7.5, 4.2)
    axis = figure.add_subplot(1, 1, 1)
    for row in rows:
        gain = _gain(row, metric)
        if row.get("status") != "completed" or not gain or gain["value"] is None:
            continue
        value, (lo, hi) = gain["value"], gain["ci95"]
        x = row["peak_memory_mb"]
        axis.errorbar([x], [value], yerr=[[value - lo], [hi - value]], fmt="o", capsize=4)
        axis.annotate(row["method"], (x, value), textcoords="offset points", xytext=(6, 4))
    axis.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
    kind = next((r.get("memory_kind") for r in rows if r.get("memory_kind")), "cpu_rss")
    axis.set_xlabel("peak memory (MiB, " + ("GPU max allocated" if kind.startswith("cuda") else "process RSS") + ")")
    axis.set_ylabel(f"held-out {metric} gain (ci95)")
    axis.set_title("gain vs memory, same data, seed and token budget")
    return show(figure, path)


def metrics_payload(rows: list[dict[str, Any]], eval_method: str = "lora") -> tuple[Any, dict[str, Any] | None]:
    """What ``write_metrics`` gets: a trainer stand-in carrying ``eval_method``'s loss trace (the first completed
    method when that one did not run) and that method's eval block."""
    done = [r for r in rows if r.get("status") == "completed"]
    if not done:
        raise KitError("no method completed: see the 'failed:' and 'skipped:' lines above")
    chosen = next((r for r in done if r["method"] == eval_method), done[0])
    log = [{"step": p["step"], "loss": p["loss"]} for p in chosen["loss_trace"]]
    stand_in = SimpleNamespace(state=SimpleNamespace(log_history=log, global_step=chosen["steps"]))
    return stand_in, {**chosen["eval"], "method": chosen["method"]}


def add_methods_table(metrics_path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Add the ``methods`` table (every row, each with its eval block) to a written ``metrics.json``."""
    import json

    path = Path(metrics_path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    payload["methods"] = rows
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def estimates_table(model_name: str, names: list[str], *, seq_len: int, batch: int, lora_r: int = 16,
                    dtype: str | None = "auto") -> Any:
    """:func:`kit.training.memory.estimate_for_model` for each method, one row each (GiB), before anything is loaded."""
    import pandas as pd

    from kit.training.memory import estimate_for_model

    records = []
    for name in names:
        estimate = estimate_for_model(model_name, get_method(name).estimate_as, seq_len, batch, lora_r=lora_r,
                                      dtype=dtype or "auto")
        records.append({"method": name, "trainable": f"{estimate.trainable_params:,}",
                        **{k.removesuffix("_gb") + "_GiB": round(v, 3) for k, v in estimate.parts().items()},
                        "total_GiB": round(estimate.total_gb, 3)})
    frame = pd.DataFrame.from_records(records).set_index("method")
    device = estimate.assumptions.get("device") if names else "?"
    print(f"[memory] estimates for {model_name} on {device}, seq {seq_len} x batch {batch}"
          + (" (CPU: a floor for the process's RAM)" if device == "cpu" else ""))
    return frame
