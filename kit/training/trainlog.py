"""A compact training log: one table row every N steps instead of transformers' per-step dicts.

Each row holds the step, the epoch, the mean loss over the interval (not one noisy batch), the learning rate and
two or three task metrics (the mean over the interval too): rewards for GRPO, reward accuracy and margin for DPO.
The same rows print headless (papermill, ``kit batch``) and in Jupyter. :func:`quiet` puts the log on a trainer and
takes off transformers' ``PrinterCallback`` (a dict per step, numbers as strings) and the progress bar's dict
printing; in an interactive kernel a plain progress bar stays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# Task metrics per trainer kind: log key -> column name.
KIND_METRICS: dict[str, dict[str, str]] = {
    "sft": {"grad_norm": "grad_norm"},
    "dpo": {"rewards/accuracies": "reward_acc", "rewards/margins": "margin"},
    "grpo": {"reward": "reward", "reward_std": "reward_std", "completions/mean_length": "length"},
}
ROWS = 10  # about this many rows per run when ``every`` is not given

_HEAD = {"en": ("step", "epoch", "loss", "lr"), "zh": ("步数", "epoch", "损失", "学习率")}


def default_every(max_steps: int, rows: int = ROWS) -> int:
    """Steps between rows so a run prints about ``rows`` of them."""
    return max(1, math.ceil(max(1, int(max_steps or 1)) / rows))


def _pad(text: str, width: int) -> str:
    """Right-align ``text`` in ``width`` columns, CJK characters counting two."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return " " * max(0, width - used) + text


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.2e}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


class IntervalLog:
    """The rows, independent of transformers: feed it each ``on_log`` dict and the step; it returns text to print."""

    def __init__(self, every: int | None = None, metrics: Mapping[str, str] | None = None, lang: str = "en") -> None:
        self.every = every
        self.metrics = dict(metrics or {})
        self.lang = lang
        self._sums: dict[str, list[float]] = {}
        self._lr: float | None = None
        self._epoch: float | None = None
        self._header_done = False
        self.rows: list[dict[str, Any]] = []

    def header(self) -> str:
        names = [*_HEAD[self.lang], *self.metrics.values()]
        widths = [6, 6, 9, 9, *[max(10, len(n) + 1) for n in self.metrics.values()]]
        return " ".join(_pad(n, w) for n, w in zip(names, widths))

    def _row_text(self, row: Mapping[str, Any]) -> str:
        cells = [str(row["step"]), _fmt(row["epoch"]) if row["epoch"] is not None else "-", _fmt(row["loss"]),
                 _fmt(row["lr"]), *[_fmt(row.get(n)) for n in self.metrics.values()]]
        widths = [6, 6, 9, 9, *[max(10, len(n) + 1) for n in self.metrics.values()]]
        return " ".join(_pad(c, w) for c, w in zip(cells, widths))

    def add(self, logs: Mapping[str, Any], step: int, max_steps: int) -> str | None:
        """Take one log dict; return the lines to print (a header the first time), or None between rows."""
        if "train_runtime" in logs or "train_loss" in logs:
            return self.summary(logs, step)
        for key in ("loss", *self.metrics):
            value = logs.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
                self._sums.setdefault(key, []).append(float(value))
        if "learning_rate" in logs:
            self._lr = float(logs["learning_rate"])
        if "epoch" in logs:
            self._epoch = float(logs["epoch"])
        every = self.every or default_every(max_steps)
        if not self._sums or (step % every and step != max_steps):
            return None
        row = {"step": step, "epoch": self._epoch, "lr": self._lr,
               "loss": _mean(self._sums.get("loss")),
               **{name: _mean(self._sums.get(key)) for key, name in self.metrics.items()}}
        self._sums = {}
        self.rows.append(row)
        lines = [] if self._header_done else [self.header()]
        self._header_done = True
        return "\n".join([*lines, self._row_text(row)])

    def summary(self, logs: Mapping[str, Any], step: int) -> str:
        """The closing line: steps, time and the mean training loss over the whole run."""
        runtime, loss = logs.get("train_runtime"), logs.get("train_loss")
        if self.lang == "zh":
            return (f"训练结束：{step} 步，用时 {float(runtime or 0):.1f} 秒，全程平均损失 {_fmt(loss)}"
                    "（每行的损失是该区间内各步的平均）")
        return (f"done: {step} steps in {float(runtime or 0):.1f} s, mean training loss {_fmt(loss)} over the run "
                "(each row's loss is the mean over its interval)")


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def settings_line(args: Any, state: Any, lang: str = "en", every: int | None = None,
                  steps_per_epoch: int | None = None) -> str:
    """What this run trains with, read from the trainer's own arguments (so markdown need not state it)."""
    steps = state.max_steps
    batch = args.per_device_train_batch_size
    accum = args.gradient_accumulation_steps
    every = every or default_every(steps)
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    if steps_per_epoch:
        epochs = (f"{steps / steps_per_epoch:.2f} 个 epoch，每个 epoch {steps_per_epoch} 步" if lang == "zh"
                  else f"{steps / steps_per_epoch:.2f} epochs of {steps_per_epoch} steps")
    else:
        epochs = f"最多 {state.num_train_epochs} 个 epoch" if lang == "zh" else f"at most {state.num_train_epochs} epochs"
    if lang == "zh":
        return (f"本次训练：{steps} 步（{epochs}），学习率 {args.learning_rate:g}（{schedule}，"
                f"预热 {args.warmup_steps} 步），每步 {batch} 条 × 梯度累积 {accum}；每 {every} 步打印一行")
    return (f"training: {steps} steps ({epochs}), learning rate {args.learning_rate:g} "
            f"({schedule}, warmup {args.warmup_steps}), batch {batch} x accumulation {accum}; "
            f"a row every {every} steps")


@lru_cache(maxsize=1)
def _callback_class() -> type:
    from transformers import TrainerCallback

    class CompactLog(TrainerCallback):
        """Prints :class:`IntervalLog` rows on the main process."""

        def __init__(self, every: int | None = None, metrics: Mapping[str, str] | None = None,
                     lang: str = "en") -> None:
            self.log = IntervalLog(every, metrics, lang)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                loader = kwargs.get("train_dataloader")
                try:
                    per_epoch = max(1, len(loader) // max(1, args.gradient_accumulation_steps)) if loader else None
                except TypeError:  # an iterable dataset has no length
                    per_epoch = None
                print(settings_line(args, state, self.log.lang, self.log.every, per_epoch))

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and state.is_world_process_zero:
                text = self.log.add(logs, state.global_step, state.max_steps)
                if text:
                    print(text, flush=True)

    return CompactLog


@lru_cache(maxsize=1)
def _quiet_bar_class() -> type:
    from transformers.trainer_callback import ProgressCallback

    class QuietProgress(ProgressCallback):
        """transformers' tqdm bar without the dict it writes under the bar at every log."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            return None

    return QuietProgress


def compact_log(kind: str = "sft", every: int | None = None, metrics: Mapping[str, str] | None = None,
                lang: str = "en") -> Any:
    """A ``TrainerCallback`` printing the compact table; ``kind`` (sft, dpo, grpo) picks the task metrics."""
    if metrics is None:
        if kind not in KIND_METRICS:
            from kit.errors import KitError

            raise KitError(f"kind must be one of {sorted(KIND_METRICS)}, got {kind!r}")
        metrics = KIND_METRICS[kind]
    return _callback_class()(every, metrics, lang)


def quiet(trainer: Any, kind: str = "sft", every: int | None = None, metrics: Mapping[str, str] | None = None,
          lang: str = "en") -> Any:
    """Swap ``trainer``'s per-step printing for the compact log; returns the trainer. Headless: no bar at all;
    interactive: a progress bar that does not print dicts."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from kit.runinfo import is_headless

    had_bar = False
    for callback in list(trainer.callback_handler.callbacks):
        name = type(callback).__name__
        if isinstance(callback, (PrinterCallback, ProgressCallback)) or name == "NotebookProgressCallback":
            had_bar = had_bar or not isinstance(callback, PrinterCallback)
            trainer.remove_callback(callback)
    if had_bar and not is_headless():
        trainer.add_callback(_quiet_bar_class()())
    trainer.add_callback(compact_log(kind, every, metrics, lang))
    return trainer

