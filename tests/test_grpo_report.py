"""Notebook 03's three-point eval block (base, warm-up, GRPO) and its ``grpo`` block: reward rise and audit."""

from __future__ import annotations

import json

import pytest

from kit.errors import KitError
from kit.evaluation.block import eval_block, format_block
from kit.evaluation.grpo_report import (
    audit,
    curve_summary,
    grpo_block,
    plot_reward_curves,
    reward_series,
    rise,
)


def _log(totals: list[float], correct: list[float], fmt: list[float]) -> list[dict]:
    log = [{"loss": 0.0, "step": 0}]
    for step, (t, c, f) in enumerate(zip(totals, correct, fmt), 1):
        log.append({"step": step, "reward": t, "rewards/correctness_reward/mean": c,
                    "rewards/soft_format_reward/mean": f, "rewards/soft_format_reward/std": 0.1})
    return log


def test_eval_block_with_a_warmup_point_has_the_issue_shape() -> None:
    n = 64
    before = {"accuracy": [0.0] * n, "format_rate": [0.0] * n}
    warm = {"accuracy": [1.0] * 16 + [0.0] * 48, "format_rate": [1.0] * n}
    after = {"accuracy": [1.0] * 40 + [0.0] * 24, "format_rate": [1.0] * n}
    block = eval_block(before, after, warmup=warm)
    assert list(block) == ["split", "n", "before", "warmup", "after", "gain", "gain_over_warmup"]
    assert block["n"] == 64 and block["warmup"] == {"accuracy": 0.25, "format_rate": 1.0}
    over = block["gain_over_warmup"]["accuracy"]
    assert over["value"] == 0.375 and over["ci95"][0] > 0
    assert block["gain_over_warmup"]["format_rate"] == {"value": 0.0, "ci95": [0.0, 0.0]}
    assert "accuracy over the warm-up: 0.2500 -> 0.6250" in format_block(block)
    json.dumps(block)


def test_eval_block_rejects_a_warmup_of_another_size() -> None:
    with pytest.raises(KitError, match="one score per held-out item"):
        eval_block({"a": [0.0, 1.0]}, {"a": [1.0, 1.0]}, warmup={"a": [1.0]})


def test_rise_compares_the_first_and_last_quarter() -> None:
    flat = rise([1.0, 1.2, 0.8, 1.0] * 4)
    assert flat["value"] == 0.0 and flat["ci95"][0] < 0 < flat["ci95"][1]
    up = rise([0.1, 0.2, 0.15, 0.1] + [0.5] * 8 + [0.9, 1.0, 0.95, 1.1])
    assert up["value"] == pytest.approx(0.85, abs=1e-4) and up["ci95"][0] > 0.7
    assert rise([0.1, 0.5, 0.9])["ci95"] == [None, None]  # too few steps for an interval


def test_learned_run() -> None:
    steps = 40
    correct = [0.2 + 0.015 * i for i in range(steps)]
    log = _log([c + 0.5 for c in correct], correct, [0.5] * steps)
    over = {"accuracy": {"value": 0.2, "ci95": [0.08, 0.31]}, "format_rate": {"value": 0.0, "ci95": [0.0, 0.0]}}
    block = grpo_block(log, over)
    assert block["steps"] == 40 and len(block["reward_by_step"]) == 40
    assert set(block["rewards_by_step"]) == {"correctness_reward", "soft_format_reward"}
    assert block["reward_rise"]["ci95"][0] > 0 and block["audit"] == "learned"
    assert block["audit_line"].startswith("audit: learned.") and "\n" not in block["audit_line"]
    assert "mean reward by quarter of 40 steps" in curve_summary(block)
    json.dumps(block)


def test_format_hacking_is_flagged_not_called_a_success() -> None:
    """The format reward rises while held-out accuracy over the warm-up does not: ``format_only``, one line."""
    steps = 32
    fmt = [min(0.5, 0.02 * i) for i in range(steps)]
    log = _log([0.1 + f for f in fmt], [0.1] * steps, fmt)
    over = {"accuracy": {"value": 0.02, "ci95": [-0.05, 0.09]}, "format_rate": {"value": 0.4, "ci95": [0.3, 0.5]}}
    block = grpo_block(log, over)
    assert block["audit"] == "format_only"
    assert "NOT a success" in block["audit_line"] and "soft_format_reward" in block["audit_line"]


def test_flat_run() -> None:
    log = _log([0.6, 0.5, 0.6, 0.5] * 4, [0.1, 0.0, 0.1, 0.0] * 4, [0.5] * 16)
    over = {"accuracy": {"value": 0.0, "ci95": [-0.06, 0.06]}}
    assert grpo_block(log, over)["audit"] == "flat"
    assert audit(None, {}) == "flat"


def test_a_log_without_rewards_is_one_clear_error() -> None:
    with pytest.raises(KitError, match="no 'reward' entry"):
        grpo_block([{"loss": 0.1, "step": 1}])


def test_reward_series_and_plot(tmp_path) -> None:
    log = _log([0.1, 0.2, 0.3], [0.0, 0.1, 0.2], [0.1, 0.1, 0.1])
    total, per = reward_series(log)
    assert total == [0.1, 0.2, 0.3] and per["correctness_reward"] == [0.0, 0.1, 0.2]
    plot_reward_curves(grpo_block(log), tmp_path / "rewards.png")
    assert (tmp_path / "rewards.png").stat().st_size > 1000


def test_curve_summary_covers_every_step_in_four_parts() -> None:
    block = grpo_block(_log([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.0] * 6, [0.5] * 6))
    assert "quarter of 6 steps: 1.000 | 2.500 | 4.000 | 5.500;" in curve_summary(block)
