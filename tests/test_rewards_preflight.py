"""kit.rewards.preflight: flags rewards that cannot teach GRPO anything, before GPU time is spent."""

from __future__ import annotations

import warnings

import pytest

from kit.errors import KitError
from kit.rewards import RewardWarning, make_rewards, preflight

GOOD = "<reasoning>\n3*6=18\n</reasoning>\n最终答案：18"
SAMPLE = [GOOD, "<reasoning>x</reasoning>\n最终答案：17", "The answer is 18.", "no idea", GOOD + "\n谢谢", ""]
ANSWERS = ["#### 18"] * len(SAMPLE)


def always_zero(prompts, completions, **kwargs):
    """A reward whose regex never matches."""
    return [0.0] * len(completions)


def constant(prompts, completions, **kwargs):
    return [0.3] * len(completions)


def broken(prompts, completions, **kwargs):
    return [float(c) for c in completions]  # raises on text


def test_good_rewards_pass_quietly(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = preflight(make_rewards("zh"), [None] * len(SAMPLE), SAMPLE, answer=ANSWERS)
    assert report.ok and report.problems == []
    assert set(report.stats) == {
        "correctness_reward",
        "strict_format_reward",
        "soft_format_reward",
        "xml_count_reward",
        "int_reward",
    }
    c = report.stats["correctness_reward"]
    assert c.n == 6 and c.maximum == 1.0 and c.minimum == 0.0 and c.nonzero == pytest.approx(3 / 6)
    assert c.mean == pytest.approx((1 + 0 + 0.5 + 0 + 1 + 0) / 6)
    out = capsys.readouterr().out
    assert "correctness_reward" in out and "ok: every reward varies" in out
    assert str(report).splitlines()[0].startswith("reward")


def test_always_zero_and_constant_rewards_warn_loudly(capsys):
    funcs = [make_rewards("zh")[0], always_zero, constant]
    with pytest.warns(RewardWarning) as caught:
        report = preflight(funcs, [None] * len(SAMPLE), SAMPLE, answer=ANSWERS)
    assert not report.ok
    assert report.stats["correctness_reward"].ok
    assert "always 0" in report.stats["always_zero"].problems[0]
    assert "same value (0.3)" in report.stats["constant"].problems[0]
    assert "always_zero" in str(caught[0].message)
    out = capsys.readouterr().out
    assert "[preflight] WARNING always_zero: always 0" in out and "GRPO learns nothing" in out
    assert "PROBLEM" in out


def test_strict_raises_kit_error():
    with pytest.raises(KitError, match="always_zero"):
        preflight([always_zero], [None] * 4, ["a", "b", "c", "d"], strict=True, verbose=False)


def test_missing_answer_column_is_caught():
    """The commonest silent failure: forgetting to pass the answer column makes correctness always 0."""
    with pytest.raises(KitError, match="correctness_reward: always 0"):
        preflight(make_rewards("xml"), [None] * len(SAMPLE), SAMPLE, strict=True, verbose=False)


def test_a_crashing_or_malformed_reward_is_reported_not_raised():
    def short(prompts, completions, **kwargs):
        return [1.0]

    def nones(prompts, completions, **kwargs):
        return [None] * len(completions)

    with pytest.warns(RewardWarning):
        report = preflight(
            [broken, short, nones, make_rewards()[0]], [None] * 6, SAMPLE, answer=ANSWERS, verbose=False
        )
    assert "raised ValueError" in report.stats["broken"].problems[0]
    assert "returned 1 scores for 6" in report.stats["short"].problems[0]
    assert "returned None" in report.stats["nones"].problems[0]
    assert report.stats["correctness_reward"].ok


def test_groups_are_expanded_and_tied_groups_reported():
    prompts = ["p1", "p2"]
    completions = [GOOD, GOOD, GOOD, "wrong 5", "wrong 6", GOOD]  # group 1 ties, group 2 does not
    seen = {}

    def spy(prompts, completions, answer, **kwargs):
        seen["prompts"], seen["answer"] = prompts, answer
        return [1.0 if i < 3 else float(i) for i in range(len(completions))]

    report = preflight(
        [make_rewards()[0], spy], prompts, completions, answer=["18", "18"], num_generations=3, verbose=False
    )
    assert seen["prompts"] == ["p1"] * 3 + ["p2"] * 3 and seen["answer"] == ["18"] * 6
    assert report.stats["correctness_reward"].tied_groups == pytest.approx(0.5)
    assert report.stats["spy"].tied_groups == pytest.approx(0.5)
    assert report.num_generations == 3


def test_reward_that_never_differs_within_a_group_is_flagged():
    def per_prompt(prompts, completions, **kwargs):
        return [float(p) for p in prompts]  # varies between prompts, never inside a group

    with pytest.warns(RewardWarning, match="ties inside every prompt group"):
        report = preflight([per_prompt], [1, 2], ["a"] * 4, num_generations=2, verbose=False)
    assert report.stats["per_prompt"].std > 0 and not report.ok
    assert not report.total.ok  # the summed reward cannot teach anything either


def test_reward_weights_and_duplicate_names():
    fn = make_rewards("zh")[0]
    report = preflight([fn, fn], [None] * 6, SAMPLE, answer=ANSWERS, reward_weights=[2.0, 0.0], verbose=False)
    assert list(report.stats) == ["correctness_reward", "correctness_reward_2"]
    assert report.total.mean == pytest.approx(2 * report.stats["correctness_reward"].mean)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reward_funcs": [], "prompts": [1, 2], "completions": ["a", "b"]},
        {"reward_funcs": [always_zero], "prompts": [1], "completions": ["a"]},
        {"reward_funcs": [always_zero], "prompts": [1, 2, 3], "completions": ["a", "b"]},
        {"reward_funcs": [always_zero], "prompts": [1], "completions": ["a", "b", "c"], "num_generations": 2},
        {
            "reward_funcs": [always_zero],
            "prompts": [1, 2],
            "completions": ["a", "b"],
            "reward_weights": [1, 2],
        },
    ],
)
def test_caller_mistakes_raise_kit_error(kwargs):
    with pytest.raises(KitError):
        preflight(**kwargs, verbose=False)
