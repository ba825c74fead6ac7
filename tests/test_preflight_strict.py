"""Strict GRPO pre-flight: a run whose rewards cannot tell completions apart stops before training, in one line."""

from __future__ import annotations

import warnings

import pytest

from kit.errors import KitError
from kit.rewards import RewardWarning, make_rewards, preflight, stop_if_no_signal

GOOD = "<reasoning>6 * 3 = 18</reasoning>\n最终答案：18"
SAMPLE = [GOOD, "I think it is 17", "最终答案：17", "no idea", GOOD, "18?"]
ANSWERS = ["18"] * len(SAMPLE)
BABBLE = ["the the the", "a a a a", "??", "hello", "...", "x y z", "zz", "q"]


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RewardWarning)
        return preflight(*args, verbose=False, **kwargs)


def test_every_reward_constant_stops_with_one_line() -> None:
    """03's tiny-model case: babble earns 0 from every reward, so GRPO would learn nothing."""
    report = _quiet(make_rewards("zh"), ["q1", "q2"], BABBLE, answer=["18", "4"], num_generations=4)
    with pytest.raises(KitError) as caught:
        stop_if_no_signal(report)
    message = str(caught.value)
    assert "\n" not in message
    assert "GRPO would learn nothing" in message and "correctness_reward always 0" in message
    for fix in ("prompts", "format", "rewards", "preflight_strict=False"):
        assert fix in message


def test_not_strict_prints_the_line_and_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    report = _quiet(make_rewards("zh"), [None] * len(BABBLE), BABBLE, answer=["18"] * len(BABBLE))
    stop_if_no_signal(report, strict=False)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "training anyway" in out


def test_one_varying_reward_is_enough_to_train() -> None:
    report = _quiet(make_rewards("zh"), [None] * len(SAMPLE), SAMPLE, answer=ANSWERS)
    stop_if_no_signal(report)  # no raise


def test_ties_inside_every_group_also_stop() -> None:
    def per_prompt(prompts, completions, **kwargs):
        return [float(p) for p in prompts]

    report = _quiet([per_prompt], [1, 2], ["a"] * 4, num_generations=2)
    with pytest.raises(KitError, match="per_prompt ties inside every group"):
        stop_if_no_signal(report)


def test_warnings_are_not_printed_twice(capsys: pytest.CaptureFixture[str]) -> None:
    """Verbose pre-flight prints each problem once (stdout) and warns once, briefly, without repeating them."""
    with pytest.warns(RewardWarning) as caught:
        preflight(make_rewards("zh"), [None] * len(BABBLE), BABBLE, answer=["18"] * len(BABBLE))
    out = capsys.readouterr().out
    assert len(caught) == 1
    warning = str(caught[0].message)
    assert "\n" not in warning and "details above" in warning and "correctness_reward" in warning
    for line in out.splitlines():
        if line.startswith("[preflight] WARNING"):
            assert line.removeprefix("[preflight] WARNING ") not in warning
