"""Check reward functions on sample completions before any GPU time is spent.

GRPO learns from differences between the rewards of completions to the same prompt. A reward that gives every
completion the same value (always 0 because a regex never matches, or the answer column is missing) teaches
nothing, and a run with it burns hours for no gain. :func:`preflight` scores a few completions (e.g. from the
base model), prints a table and warns (or raises with ``strict=True``) about such rewards.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.errors import KitError


class RewardWarning(UserWarning):
    """A reward function that cannot teach GRPO anything on the sample it was checked on."""


@dataclass
class RewardStats:
    """One reward function's scores on the sample: mean, std, extremes, share of non-zero scores and of tied
    prompt groups (None without ``num_generations``), and the problems found."""

    name: str
    n: int = 0
    mean: float = math.nan
    std: float = math.nan
    minimum: float = math.nan
    maximum: float = math.nan
    nonzero: float = math.nan
    tied_groups: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong with this function on the sample."""
        return not self.problems


@dataclass
class PreflightReport:
    """What :func:`preflight` found: per-function stats, the summed reward's stats and an overall ``ok``."""

    stats: dict[str, RewardStats]
    total: RewardStats
    num_generations: int | None = None

    @property
    def ok(self) -> bool:
        """True when every function and the summed reward can tell completions apart."""
        return self.total.ok and all(s.ok for s in self.stats.values())

    @property
    def problems(self) -> list[str]:
        """Every problem found, one line each, prefixed with the function's name."""
        return [f"{s.name}: {p}" for s in [*self.stats.values(), self.total] for p in s.problems]

    def table(self) -> str:
        """The stats as a small fixed-width text table."""
        rows = [*self.stats.values(), self.total]
        width = max(8, *(len(s.name) for s in rows))
        cells = [f"{h:>7}" for h in ("mean", "std", "min", "max", "nonzero")]
        head = f"{'reward':<{width}}  " + "  ".join(cells) + f"  {'tied grp':>8}  verdict"
        lines = [head, "-" * len(head)]
        for s in rows:
            tied = "-" if s.tied_groups is None else f"{s.tied_groups:.0%}"
            verdict = "ok" if s.ok else "PROBLEM"
            lines.append(
                f"{s.name:<{width}}  {s.mean:>7.3f}  {s.std:>7.3f}  {s.minimum:>7.3f}  {s.maximum:>7.3f}  "
                f"{s.nonzero:>7.0%}  {tied:>8}  {verdict}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _name(fn: Any, taken: set[str]) -> str:
    base = getattr(fn, "__name__", None) or type(fn).__name__
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _stats(name: str, scores: list[float], num_generations: int | None) -> RewardStats:
    n = len(scores)
    mean = sum(scores) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in scores) / n)
    stats = RewardStats(name, n, mean, std, min(scores), max(scores), sum(1 for x in scores if x != 0) / n)
    if num_generations:
        groups = [scores[i : i + num_generations] for i in range(0, n, num_generations)]
        stats.tied_groups = sum(1 for g in groups if max(g) - min(g) <= 1e-12) / len(groups)
    if max(scores) - min(scores) <= 1e-12:
        if mean == 0:
            stats.problems.append(
                f"always 0 on all {n} completions: GRPO learns nothing from it. Likely the completions do "
                "not use the answer format this reward expects (does the system prompt match "
                "make_rewards(format=...)?), the answer column is not passed, or the task is too hard "
                "for this model yet. Fix it or drop it."
            )
        else:
            stats.problems.append(
                f"same value ({mean:g}) for all {n} completions (std 0): GRPO's group-relative advantage "
                "from it is zero, so it only adds a constant. Check that it can tell good from bad "
                "completions, or drop it."
            )
    elif stats.tied_groups == 1.0:
        stats.problems.append(
            f"ties inside every prompt group of {num_generations}: it differs between prompts but never "
            "between completions of one prompt, so GRPO's advantage from it is zero. More varied "
            "sampling (higher temperature) or a graded reward is needed."
        )
    return stats


def _expand(values: Sequence[Any], n_prompts: int, num_generations: int | None) -> list[Any]:
    """Repeat per-prompt values ``num_generations`` times each, as TRL does; other lengths pass unchanged."""
    if num_generations and len(values) == n_prompts:
        return [v for v in values for _ in range(num_generations)]
    return list(values)


def _call(
    fn: Callable[..., Any], name: str, prompts: list[Any], completions: list[Any], columns: dict[str, Any]
):
    """Call one reward like TRL does; returns (scores, problem)."""
    try:
        out = fn(prompts=prompts, completions=completions, **columns)
    except Exception as exc:  # a crashing reward is a finding, not a preflight crash
        return None, f"raised {type(exc).__name__}: {exc}. TRL would stop training at the first batch."
    try:
        out = list(out)
    except TypeError:
        return None, f"returned {type(out).__name__}, not a list of floats."
    if len(out) != len(completions):
        return None, f"returned {len(out)} scores for {len(completions)} completions (TRL raises on this)."
    scores = []
    for i, value in enumerate(out):
        if value is None:
            return None, f"returned None for completion {i} (TRL turns it into NaN and ignores it)."
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None, f"returned {value!r} for completion {i}, not a number."
        if not math.isfinite(number):
            return None, f"returned {number} for completion {i}; rewards must be finite."
        scores.append(number)
    rng = getattr(fn, "reward_range", None)
    if rng and any(not (rng[0] - 1e-9 <= x <= rng[1] + 1e-9) for x in scores):
        return scores, f"left its documented range {rng}: min {min(scores)}, max {max(scores)}."
    return scores, None


def preflight(
    reward_funcs: Callable[..., Any] | Sequence[Callable[..., Any]],
    prompts: Sequence[Any],
    completions: Sequence[Any],
    *,
    strict: bool = False,
    num_generations: int | None = None,
    reward_weights: Sequence[float] | None = None,
    verbose: bool = True,
    **columns: Any,
) -> PreflightReport:
    """Score ``completions`` with each reward, print a table and flag rewards that cannot teach GRPO anything.

    ``columns`` are the dataset columns TRL would pass (e.g. ``answer=[...]``). With ``num_generations`` the
    completions are read as consecutive groups per prompt (TRL's layout); per-prompt ``prompts`` and columns
    are then repeated to match, and the share of groups whose rewards all tie is reported. Problems are warned
    about (:class:`RewardWarning` plus a printed line); with ``strict=True`` they raise :class:`KitError`.
    """
    funcs = [reward_funcs] if callable(reward_funcs) else list(reward_funcs)
    if not funcs or not all(callable(f) for f in funcs):
        raise KitError(
            "preflight needs one or more reward functions (callables taking prompts, completions, ...)."
        )
    completions = list(completions)
    prompts = list(prompts)
    if len(completions) < 2:
        raise KitError(
            f"preflight needs at least 2 sample completions to measure spread; got {len(completions)}."
        )
    if num_generations is not None:
        if int(num_generations) < 2 or len(completions) % int(num_generations):
            raise KitError(
                f"num_generations={num_generations} must be >= 2 and divide the {len(completions)} "
                "completions "
                "(TRL lays them out as consecutive groups per prompt)."
            )
        num_generations = int(num_generations)
    n_prompts = len(prompts)
    prompts = _expand(prompts, n_prompts, num_generations)
    if len(prompts) != len(completions):
        raise KitError(
            f"{n_prompts} prompts for {len(completions)} completions: pass one prompt per completion, "
            "or one per "
            "group with num_generations."
        )
    columns = {
        k: _expand(v, n_prompts, num_generations) if isinstance(v, (list, tuple)) else v
        for k, v in columns.items()
    }
    weights = list(reward_weights) if reward_weights is not None else [1.0] * len(funcs)
    if len(weights) != len(funcs):
        raise KitError(f"{len(weights)} reward_weights for {len(funcs)} reward functions.")

    taken: set[str] = set()
    stats: dict[str, RewardStats] = {}
    total = [0.0] * len(completions)
    for fn, weight in zip(funcs, weights):
        name = _name(fn, taken)
        scores, problem = _call(fn, name, prompts, completions, columns)
        if scores is None:
            stats[name] = RewardStats(name, problems=[problem or "failed"])
            continue
        stats[name] = _stats(name, scores, num_generations)
        if problem:
            stats[name].problems.append(problem)
        total = [t + weight * x for t, x in zip(total, scores)]
    total_stats = _stats("(total)", total, num_generations)
    if total_stats.problems:
        total_stats.problems = [
            "the summed reward "
            + total_stats.problems[0].replace(
                "GRPO learns nothing from it", "GRPO would learn nothing at all"
            )
        ]
    report = PreflightReport(stats, total_stats, num_generations)

    if verbose:
        print(f"[preflight] {len(funcs)} reward function(s) on {len(completions)} completions")
        print(report.table())
    for line in report.problems:
        if verbose:
            print(f"[preflight] WARNING {line}")
    if report.problems:
        message = "Reward preflight found problems:\n  " + "\n  ".join(report.problems)
        if strict:
            raise KitError(message)
        if verbose:  # the lines are printed above: warn once, briefly, instead of repeating them on stderr
            names = ", ".join(dict.fromkeys(p.split(":", 1)[0] for p in report.problems))
            message = f"reward preflight: {names} cannot teach GRPO on this sample (details above)"
        warnings.warn(message, RewardWarning, stacklevel=2)
    elif verbose:
        print("[preflight] ok: every reward varies across the sample")
    return report


def _verdict(stats: RewardStats) -> str:
    if not stats.n:
        return "failed"
    if stats.std == 0:
        return f"always {stats.mean:g}"
    return "ties inside every group" if stats.tied_groups == 1.0 else "varies"


def stop_if_no_signal(
    report: PreflightReport, strict: bool = True, require: Sequence[str] | None = ("correctness_reward",)
) -> None:
    """Stop before training when GRPO could learn nothing, or only the format: the summed reward does not vary
    across the sample (or ties inside every prompt group), or a ``require``-d reward (by default the
    correctness reward, when present) is constant on it, e.g. a correctness reward that never fires.

    Raises a one-line :class:`KitError` saying what to fix; with ``strict=False`` (a plan's
    ``preflight_strict: false``, with its reason) it prints that line and returns, and training goes on.
    A format reward that is constant is only warned about: after a warm-up every completion may be well formed.
    """
    sample = f"{report.total.n} sampled completions"
    if report.num_generations:
        sample += f" ({report.total.n // report.num_generations} prompts x {report.num_generations})"
    if not report.total.ok:
        per_reward = "; ".join(f"{s.name} {_verdict(s)}" for s in report.stats.values())
        line = (
            f"GRPO would learn nothing: the summed reward does not vary across {sample} ({per_reward}). Fix the "
            "prompts (does the system prompt ask for the format the rewards check?), the format (answer_format "
            "must match make_rewards(...); warmup_sft_steps > 0 teaches it first), or the rewards (pass the "
            "answer column; grade partially), or set preflight_strict=False to train anyway."
        )
    else:
        stuck = [s for name, s in report.stats.items() if name in (require or ()) and not s.ok]
        if not stuck:
            return
        line = (
            f"GRPO would learn the format at most: {', '.join(f'{s.name} {_verdict(s)}' for s in stuck)} "
            f"across {sample}. Fix: give the model problems it sometimes solves (easier data such as "
            "data/arith/train.jsonl, more warmup_sft_steps), pass the answer column, check the reward against "
            "a correct completion, or set preflight_strict=False to train anyway."
        )
    if strict:
        raise KitError(line)
    print(f"[preflight] preflight_strict=False, training anyway: {line}")
