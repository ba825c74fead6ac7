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


FORMATTED_WRONG = ["<reasoning>6 * 3 = 17</reasoning>\n最终答案：17", "<reasoning>6+3</reasoning>\n最终答案：9",
                   "最终答案：17", "<reasoning>x</reasoning> 17"] * 2


def test_planted_never_firing_correctness_reward_ends_in_the_preflight() -> None:
    """Format rewards vary but the correctness reward can never fire (here: the answers are unreachable):
    GRPO could only learn the format, so a strict pre-flight stops with one line and the fix."""
    report = _quiet(make_rewards("zh"), ["q1", "q2"], FORMATTED_WRONG, answer=["18", "18"], num_generations=4)
    assert report.total.ok  # the summed reward varies: the old check would have trained
    with pytest.raises(KitError) as caught:
        stop_if_no_signal(report)
    message = str(caught.value)
    assert "\n" not in message
    assert "correctness_reward always 0" in message and "2 prompts x 4" in message
    assert "data/arith/train.jsonl" in message and "preflight_strict=False" in message


def test_planted_constant_reward_function_stops_too() -> None:
    def never(prompts, completions, **kwargs):
        return [0.0] * len(completions)

    never.__name__ = "correctness_reward"
    rewards = [never, *make_rewards("zh")[1:]]
    report = _quiet(rewards, ["q1", "q2"], SAMPLE[:4] + BABBLE[:4], answer=["18", "18"], num_generations=4)
    with pytest.raises(KitError, match=r"^GRPO would learn the format at most: correctness_reward always 0"):
        stop_if_no_signal(report)


def test_a_constant_format_reward_alone_does_not_stop() -> None:
    """After a warm-up every completion can be well formed: a format reward at its maximum is not a stop."""
    formatted = [GOOD, "<reasoning>6 * 3 = 17</reasoning>\n最终答案：17"] * 4
    report = _quiet(make_rewards("zh"), ["q1", "q2"], formatted, answer=["18", "18"], num_generations=4)
    assert not report.stats["soft_format_reward"].ok  # constant 0.5: warned about
    stop_if_no_signal(report)  # correctness varies: trains


def test_not_strict_goes_on_after_a_stuck_correctness_reward(capsys: pytest.CaptureFixture[str]) -> None:
    report = _quiet(make_rewards("zh"), ["q1", "q2"], FORMATTED_WRONG, answer=["18", "18"], num_generations=4)
    stop_if_no_signal(report, strict=False)
    assert "training anyway: GRPO would learn the format at most" in capsys.readouterr().out
