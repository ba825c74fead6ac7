"""kit.evaluation.preference: the length-normalised preference, the implicit-reward accuracy with its ci95, the lines."""

from __future__ import annotations

import pytest

from kit.evaluation.preference import DPO_METRICS, dpo_lines, preference_scores, stats_line


def test_length_normalised_preference_undoes_the_length_bias() -> None:
    # The chosen answers are longer: summed log-probs prefer the rejected ones, per-token log-probs the chosen.
    chosen, rejected = [-20.0, -18.0], [-10.0, -12.0]
    scores = preference_scores(chosen, rejected, 0.1, chosen_n=[20.0, 18.0], rejected_n=[5.0, 6.0])
    assert set(scores) == set(DPO_METRICS)
    assert scores["reward_accuracy"] == [0.0, 0.0] and scores["reward_margin"] == pytest.approx([-1.0, -0.6])
    assert scores["norm_accuracy"] == [1.0, 1.0] and scores["norm_margin"] == pytest.approx([1.0, 1.0])
    assert set(preference_scores(chosen, rejected, 0.1)) == {"reward_accuracy", "reward_margin"}
    line = stats_line({"chosen": chosen, "rejected": rejected, "chosen_n": [20.0, 18.0], "rejected_n": [5.0, 6.0]},
                      0.1)
    assert "reward_accuracy 0.0000" in line and "norm_accuracy 1.0000" in line
    assert "19.0 tokens chosen vs 5.5 rejected" in line


def _block(summed: tuple[float, float], norm: tuple[float, float], accuracy: float, ci: list[float]) -> dict:
    return {"gain": {"reward_margin": {"value": sum(summed) / 2, "ci95": list(summed)},
                     "norm_margin": {"value": sum(norm) / 2, "ci95": list(norm)}},
            "implicit": {"reward_accuracy": accuracy, "reward_margin": 0.1, "reward_accuracy_ci95": ci}}


def test_dpo_lines_name_the_verdict_and_warn_when_length_may_explain_it() -> None:
    text = dpo_lines(_block((0.1, 0.3), (-0.1, 0.2), 0.8, [0.6, 0.95]))
    assert "implicit-reward accuracy" in text and "0.8000 (ci95 +0.6000..+0.9500; against chance 0.5: better)" in text
    assert "verdict (reward_margin gain = DPO's implicit reward margin): better" in text
    assert "part of the summed gain may be length" in text
    agree = dpo_lines(_block((0.1, 0.3), (0.1, 0.2), 0.5, [0.3, 0.7]))
    assert "may be length" not in agree and "against chance 0.5: unclear" in agree
