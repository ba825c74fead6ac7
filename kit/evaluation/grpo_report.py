"""The ``"grpo"`` block of notebook 03's ``metrics.json``: reward curves, their rise, and a reward-hacking audit.

Shape (tools and notebook 05 read it)::

    {"steps": 60, "reward_by_step": [...], "rewards_by_step": {"correctness_reward": [...], ...},
     "reward_rise": {"value": 0.4, "ci95": [0.2, 0.6]},
     "rises": {"correctness_reward": {"value": ..., "ci95": [...]}, ...},
     "audit": "learned", "audit_line": "..."}

``reward_rise`` is the mean total reward of the last quarter of logged steps minus that of the first quarter,
with a 95% bootstrap interval (each quarter's steps resampled with replacement, seeded). ``audit`` says what the
run did: ``learned`` (held-out accuracy above the warm-up's, ci95 above 0), ``format_only`` (accuracy not
shown to rise while a format reward rose: the model learned the format, or gamed it, not the task) or ``flat``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

from kit.errors import KitError
from kit.evaluation.block import DIGITS, RESAMPLES, SEED, verdict

CORRECTNESS = "correctness_reward"
AUDITS = ("learned", "format_only", "flat")


def reward_series(log_history: Sequence[Mapping[str, Any]]) -> tuple[list[float], dict[str, list[float]]]:
    """The mean total reward per logged step and each reward function's mean per step, from
    ``trainer.state.log_history`` (trl logs ``reward`` and ``rewards/NAME/mean``)."""
    total: list[float] = []
    per: dict[str, list[float]] = {}
    for entry in log_history:
        if "reward" not in entry:
            continue
        total.append(round(float(entry["reward"]), DIGITS))
        for key, value in entry.items():
            if key.startswith("rewards/") and key.endswith("/mean"):
                per.setdefault(key[len("rewards/"):-len("/mean")], []).append(round(float(value), DIGITS))
    return total, per


def rise(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """``{"value": mean(last quarter) - mean(first quarter), "ci95": [lo, hi]}`` with a bootstrap interval.

    Needs at least 8 steps (two per quarter) for an interval; fewer give ``ci95`` [None, None].
    """
    import numpy as np

    data = np.asarray([float(v) for v in values], dtype=float)
    data = data[~np.isnan(data)]
    if data.size < 2:
        return {"value": None, "ci95": [None, None]}
    quarter = max(1, data.size // 4)
    first, last = data[:quarter], data[-quarter:]
    value = round(float(last.mean() - first.mean()), DIGITS)
    if quarter < 2:
        return {"value": value, "ci95": [None, None]}
    rng = np.random.default_rng(seed)
    draws = (last[rng.integers(0, quarter, size=(resamples, quarter))].mean(axis=1)
             - first[rng.integers(0, quarter, size=(resamples, quarter))].mean(axis=1))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return {"value": value, "ci95": [round(float(lo), DIGITS), round(float(hi), DIGITS)]}


def audit(gain_over_warmup: Mapping[str, Any] | None, rises: Mapping[str, Mapping[str, Any]]) -> str:
    """``learned`` when held-out accuracy rose over the warm-up (ci95 above 0); ``format_only`` when it did not
    while a format reward (any reward but correctness) or the held-out format rate rose; else ``flat``."""
    accuracy = (gain_over_warmup or {}).get("accuracy")
    if accuracy and verdict(accuracy) == "better":
        return "learned"
    format_rose = any(verdict(r) == "better" for name, r in rises.items() if name != CORRECTNESS)
    format_rate = (gain_over_warmup or {}).get("format_rate")
    if format_rose or (format_rate and verdict(format_rate) == "better"):
        return "format_only"
    return "flat"


def _ci(gain: Mapping[str, Any] | None) -> str:
    if not gain or gain.get("value") is None:
        return "n/a"
    lo, hi = gain.get("ci95") or (None, None)
    interval = "no ci95 (too few steps)" if lo is None else f"ci95 {lo:+.3f}..{hi:+.3f}"
    return f"{gain['value']:+.3f} ({interval})"


def audit_line(block: Mapping[str, Any], gain_over_warmup: Mapping[str, Any] | None = None) -> str:
    """One line that says what the run did, in words and numbers."""
    accuracy = _ci((gain_over_warmup or {}).get("accuracy"))
    total = _ci(block.get("reward_rise"))
    kind = block.get("audit")
    if kind == "learned":
        return f"audit: learned. Held-out accuracy over the warm-up {accuracy}; mean reward rise {total}."
    if kind == "format_only":
        risen = [n for n, r in (block.get("rises") or {}).items() if n != CORRECTNESS and verdict(r) == "better"]
        return (f"audit: format_only. NOT a success: the format rewards rose ({', '.join(risen) or 'format_rate'}) "
                f"but held-out accuracy over the warm-up did not ({accuracy}); the model learned the format, "
                "not the task (or games the format rewards).")
    return (f"audit: flat. Neither held-out accuracy ({accuracy}) nor a format reward rose; mean reward rise "
            f"{total}. Train longer, raise the learning rate, or pick easier problems.")


def grpo_block(
    log_history: Sequence[Mapping[str, Any]],
    gain_over_warmup: Mapping[str, Any] | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """The ``"grpo"`` block from a GRPOTrainer's ``log_history`` and the eval block's ``gain_over_warmup``."""
    total, per = reward_series(log_history)
    if not total:
        raise KitError("the GRPO log has no 'reward' entry: train with logging_steps=1 and at least one step")
    rises = {name: rise(values, resamples=resamples, seed=seed) for name, values in per.items()}
    block: dict[str, Any] = {
        "steps": len(total),
        "reward_by_step": total,
        "rewards_by_step": per,
        "reward_rise": rise(total, resamples=resamples, seed=seed),
        "rises": rises,
    }
    block["audit"] = audit(gain_over_warmup, rises)
    block["audit_line"] = audit_line(block, gain_over_warmup)
    return block


def curve_summary(block: Mapping[str, Any]) -> str:
    """The reward curve in numbers: mean total reward per quarter of the steps, and each reward's rise."""
    values = list(block.get("reward_by_step") or [])
    bounds = [len(values) * k // 4 for k in range(5)]  # four near-equal parts, every step in one
    chunks = [values[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    means = " | ".join(f"{sum(c) / len(c):.3f}" for c in chunks if c)
    lines = [f"mean reward by quarter of {len(values)} steps: {means}; rise {_ci(block.get('reward_rise'))}"]
    lines += [f"  {name}: rise {_ci(r)}" for name, r in (block.get("rises") or {}).items()]
    return "\n".join(lines)


def plot_reward_curves(block: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> Any:
    """One panel per reward function plus the total: the per-step mean faint, a smoothed line bold."""
    from kit.plots import new_figure, show, smoothed

    series = {"reward (total)": list(block.get("reward_by_step") or []), **(block.get("rewards_by_step") or {})}
    figure = new_figure(3.2 * len(series), 3.0)
    axes = figure.subplots(1, len(series), squeeze=False)[0]
    for ax, (name, values) in zip(axes, series.items()):
        steps = list(range(1, len(values) + 1))
        ax.plot(steps, values, marker="o", markersize=2, linewidth=0.8, alpha=0.35)
        if len(values) >= 6:
            ax.plot(steps, smoothed(list(values)), linewidth=2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    figure.suptitle("GRPO: mean reward per step, per reward function")
    return show(figure, path)
