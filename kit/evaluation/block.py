"""The before/after evaluation block every training notebook writes under ``"eval"`` in ``metrics.json``.

Shape (per-item scores on held-out items the model never saw, before training and after)::

    {"split": "holdout", "n": 48,
     "before": {"rouge_l": 0.21, "bleu": 0.05}, "after": {"rouge_l": 0.34, "bleu": 0.12},
     "gain": {"rouge_l": {"value": 0.13, "ci95": [0.08, 0.18]}, "bleu": {...}}}

A pipeline with an intermediate stage (notebook 03: base -> SFT format warm-up -> GRPO) passes ``warmup`` scores
too: the block then carries ``"warmup"`` (its means) and ``"gain_over_warmup"`` (after − warmup, paired, the
same interval), so the last stage's own gain is judged at the right baseline.

``gain`` is the mean paired difference (after − before, item by item) with a 95% paired bootstrap interval:
the items are resampled with replacement (seeded numpy, 2,000 resamples) and the interval is the 2.5th and
97.5th percentile of the resampled mean differences. :func:`read_eval_blocks` gathers the blocks of many
runs into one table (notebook 05) and flags any run that got worse.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kit.errors import KitError

RESAMPLES = 2000
SEED = 3407
DIGITS = 4


EVAL_SAMPLES_ZERO = (
    "eval_samples=0 does not skip evaluation: every training notebook judges its run on held-out data before and "
    "after training. Set a small number (e.g. eval_samples=8) for a quick run, or None for the whole held-out split"
)


def eval_count(eval_samples: int | None, holdout_size: int) -> int:
    """``n`` = min(eval_samples, holdout size); ``eval_samples`` None (or below 0) means the whole held-out split.
    0 is refused with one line: it reads as "skip evaluation" and used to mean the whole split (10k generations)."""
    if eval_samples == 0:
        raise KitError(EVAL_SAMPLES_ZERO)
    if eval_samples is None or eval_samples < 0:
        return holdout_size
    return min(int(eval_samples), holdout_size)


def eval_subset(records: Any, eval_samples: int | None) -> Any:
    """The first ``n`` held-out records (a Dataset stays a Dataset, a list stays a list)."""
    n = eval_count(eval_samples, len(records))
    if n == 0:
        raise KitError("the held-out split is empty: raise `holdout` so some records are kept out of training")
    return records.select(range(n)) if hasattr(records, "select") else list(records)[:n]


def paired_bootstrap(
    before: Sequence[float], after: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, Any]:
    """``{"value": mean(after - before), "ci95": [lo, hi]}``: a 95% paired bootstrap interval of the mean gain.

    Pairs where either score is NaN (a metric that does not apply to that item) are left out.
    """
    import numpy as np

    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape or b.ndim != 1:
        raise KitError(f"paired scores must be two lists of the same length, got {b.shape} and {a.shape}")
    keep = ~(np.isnan(b) | np.isnan(a))
    diffs = (a - b)[keep]
    if diffs.size == 0:
        return {"value": None, "ci95": [None, None]}
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, diffs.size, size=(resamples, diffs.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"value": round(float(diffs.mean()), DIGITS), "ci95": [round(float(lo), DIGITS), round(float(hi), DIGITS)]}


def _missing(value: Any) -> bool:
    return value is None or math.isnan(float(value))


def _mean(values: Sequence[float]) -> float | None:
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return round(sum(finite) / len(finite), DIGITS) if finite else None


def eval_block(
    before: Mapping[str, Sequence[float]],
    after: Mapping[str, Sequence[float]],
    *,
    split: str = "holdout",
    resamples: int = RESAMPLES,
    seed: int = SEED,
    warmup: Mapping[str, Sequence[float]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``"eval"`` block from per-item scores: ``before[metric][i]`` and ``after[metric][i]`` are item i's.

    Both sides must have the same metrics and the same number of items. ``warmup`` (same shape) adds the
    intermediate point and ``gain_over_warmup``. ``extra`` keys are added as they are (e.g. the DPO block's
    ``implicit`` rewards).
    """
    if set(before) != set(after) or not before:
        raise KitError(f"before and after must score the same metrics, got {sorted(before)} and {sorted(after)}")
    if warmup is not None and set(warmup) != set(after):
        raise KitError(f"warmup and after must score the same metrics, got {sorted(warmup)} and {sorted(after)}")
    sizes = {len(v) for v in before.values()} | {len(v) for v in after.values()}
    sizes |= {len(v) for v in (warmup or {}).values()}
    if len(sizes) != 1 or 0 in sizes:
        raise KitError(f"every metric needs one score per held-out item on both sides; got lengths {sorted(sizes)}")
    metrics = list(before)
    # An item a metric does not apply to on any side (NaN, e.g. distinct_2 of a one-word answer) is left out of that
    # metric's means too, so every mean covers the items its gain pairs: after - before is the gain.
    sides = [before, after] + ([warmup] if warmup is not None else [])
    scored = {m: [not any(_missing(side[m][i]) for side in sides) for i in range(len(before[m]))] for m in metrics}

    def kept(side: Mapping[str, Sequence[float]], m: str) -> list[float]:
        return [v for v, keep in zip(side[m], scored[m]) if keep]

    def means(side: Mapping[str, Sequence[float]]) -> dict[str, float | None]:
        return {m: _mean(kept(side, m)) for m in metrics}

    block: dict[str, Any] = {"split": split, "n": sizes.pop(), "before": means(before)}
    if warmup is not None:
        block["warmup"] = means(warmup)
    block["after"] = means(after)
    block["gain"] = {m: paired_bootstrap(kept(before, m), kept(after, m), resamples=resamples, seed=seed)
                     for m in metrics}
    if warmup is not None:
        block["gain_over_warmup"] = {
            m: paired_bootstrap(kept(warmup, m), kept(after, m), resamples=resamples, seed=seed) for m in metrics
        }
    block.update(extra)
    return block


def table_block(
    before_table: Any,
    after_table: Any,
    metrics: Sequence[str] = ("rouge_l", "bleu"),
    *,
    warmup_table: Any = None,
    **kw: Any,
) -> dict:
    """:func:`eval_block` from two (or, with ``warmup_table``, three) :func:`kit.evaluation.scoring.evaluate_generations`
    tables on the same items."""
    tables = {"before": before_table, "after": after_table}
    if warmup_table is not None:
        tables["warmup"] = warmup_table
    for name, table in tables.items():
        if len(table) != len(before_table):
            raise KitError(f"the before and {name} tables have {len(before_table)} and {len(table)} rows: "
                           "evaluate every point on the same held-out items")
        for key in ("reference", "answer"):
            if key in before_table and key in table and list(before_table[key]) != list(table[key]):
                raise KitError(f"the before and {name} tables disagree on the {key}s: evaluate on the same items")
    warmup = None if warmup_table is None else {m: list(warmup_table[m]) for m in metrics}
    return eval_block({m: list(before_table[m]) for m in metrics}, {m: list(after_table[m]) for m in metrics},
                      warmup=warmup, **kw)


def format_block(block: Mapping[str, Any]) -> str:
    """One line per metric, its verdict judged on the ci95 where the number is:
    ``rouge_l: 0.2100 -> 0.3400 (gain +0.1300, ci95 +0.0800..+0.1800, better)``."""
    lines = [f"eval on {block.get('split')} (n={block.get('n')}):"]
    for metric, gain in (block.get("gain") or {}).items():
        before, after = block["before"].get(metric), block["after"].get(metric)
        lo, hi = gain["ci95"]
        if gain["value"] is None:
            lines.append(f"  {metric}: no scorable item")
            continue
        lines.append(f"  {metric}: {before:.4f} -> {after:.4f} (gain {gain['value']:+.4f}, ci95 {lo:+.4f}..{hi:+.4f}, "
                     f"{verdict(gain)})")
    for metric, gain in (block.get("gain_over_warmup") or {}).items():
        warm, after = block["warmup"].get(metric), block["after"].get(metric)
        if gain["value"] is None:
            continue
        lo, hi = gain["ci95"]
        lines.append(f"  {metric} over the warm-up: {warm:.4f} -> {after:.4f} "
                     f"(gain {gain['value']:+.4f}, ci95 {lo:+.4f}..{hi:+.4f}, {verdict(gain)})")
    return "\n".join(lines)


def verdict(gain: Mapping[str, Any]) -> str:
    """``better`` (ci95 above 0), ``worse`` (ci95 below 0), ``unclear`` (ci95 holds 0), ``missing``.

    Judged on the interval, not the mean: one held-out item out of 32 flipping is noise, not a regression.
    """
    value, (lo, hi) = gain.get("value"), gain.get("ci95") or (None, None)
    if value is None:
        return "missing"
    if lo is not None and lo > 0:
        return "better"
    if hi is not None and hi < 0:
        return "worse"
    return "unclear"


def read_eval_blocks(folders: Mapping[str, str | os.PathLike[str]]) -> Any:
    """One DataFrame of every run's eval block: ``run, notebook, metric, n, before, after, gain, ci95_lo,
    ci95_hi, verdict`` (a run without a block gets one row with verdict ``missing``). For notebook 05."""
    import pandas as pd

    rows = []
    for name, folder in folders.items():
        path = Path(folder) / "metrics.json"
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KitError(f"{path}: no metrics.json; run that adapter's notebook first") from None
        except json.JSONDecodeError as exc:
            raise KitError(f"{path}: not valid JSON (line {exc.lineno}); re-run that adapter's notebook") from None
        block = payload.get("eval")
        base = {"run": name, "notebook": payload.get("notebook")}
        if not isinstance(block, dict) or not block.get("gain"):
            rows.append({**base, "metric": None, "n": None, "before": None, "after": None, "gain": None,
                         "ci95_lo": None, "ci95_hi": None, "verdict": "missing"})
            continue
        for metric, gain in block["gain"].items():
            lo, hi = gain.get("ci95") or (None, None)
            rows.append({**base, "metric": metric, "n": block.get("n"), "before": block["before"].get(metric),
                         "after": block["after"].get(metric), "gain": gain.get("value"), "ci95_lo": lo,
                         "ci95_hi": hi, "verdict": verdict(gain)})
    return pd.DataFrame(rows)


def worse_runs(table: Any) -> list[str]:
    """One line per row of :func:`read_eval_blocks` whose metric fell (or whose block is missing)."""
    lines = []
    for row in table.itertuples(index=False):
        if row.verdict == "worse":
            lines.append(f"{row.run}: {row.metric} fell {row.before} -> {row.after} (ci95 {row.ci95_lo}..{row.ci95_hi})")
        elif row.verdict == "missing":
            lines.append(f"{row.run}: no eval block in metrics.json (re-run its notebook with this kit)")
    return lines
