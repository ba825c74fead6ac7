"""Property-based tests for kit.rewards: no input raises or leaves the documented range; formatting variants
of one number always score as that number; the fast paths agree with their one-regex definitions."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kit.rewards import answer_format, make_rewards
from kit.rewards.numbers import NUMBER_RE, last_number

SETTINGS = settings(max_examples=200, deadline=None)
BUNDLES = {
    fmt: make_rewards(fmt, correct_weight=1.0, format_weight=0.5, fallback_credit=0.25)
    for fmt in ("zh", "xml", "hash")
}
BUNDLES["default"] = make_rewards()

# Text that often looks like an answer: tags, markers, digits of both widths, signs and separators.
FRAGMENTS = st.sampled_from(
    ["<reasoning>", "</reasoning>", "<answer>", "</answer>", "最终答案", "：", ":", "####", "\n", " ", "18", "１８",
     "-", "−", "$", ",", ".", "/", "0", "7", "1,080", "abc", "。", "\t"]
)  # fmt: skip
ANSWERISH = st.lists(FRAGMENTS, max_size=25).map("".join)
MESSAGE = st.dictionaries(
    st.sampled_from(["role", "content", "text", "type"]),
    st.one_of(
        st.none(),
        st.sampled_from(["assistant", "user", "tool"]),
        ANSWERISH,
        st.integers(),
        st.lists(st.text(max_size=5), max_size=3),
    ),
    max_size=3,
)
LEAF = st.one_of(
    st.none(), st.text(max_size=60), ANSWERISH, st.integers(), st.floats(), st.binary(max_size=10), MESSAGE
)
COMPLETION = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
REFERENCE = st.one_of(
    st.none(),
    st.text(max_size=30),
    ANSWERISH,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.decimals(),
    st.lists(st.integers(), max_size=2),
)


@SETTINGS
@given(st.lists(COMPLETION, max_size=6), st.lists(REFERENCE, max_size=8) | REFERENCE)
def test_no_input_raises_or_leaves_the_range(completions, answers):
    for funcs in BUNDLES.values():
        for fn in funcs:
            scores = fn(
                prompts=None, completions=completions, answer=answers, completion_ids=None, trainer_state=None
            )
            assert len(scores) == len(completions)
            low, high = fn.reward_range
            for score in scores:
                assert type(score) is float and math.isfinite(score)
                assert low <= score <= high, (fn.__name__, score)


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "0" <= c <= "9" else c for c in text)


def _variants(n: int) -> list[str]:
    """Ways real output writes the integer n."""
    sign, digits = ("-" if n < 0 else ""), f"{abs(n):,}"
    return [
        str(n),
        f"{n:,}",
        f"{n}.0",
        f"{n:,}.00",
        f"{n}.",
        f"{sign}${digits}",
        f"{sign}${digits}.",
        ("−" if n < 0 else "") + str(abs(n)),
        _fullwidth(str(n)),
        _fullwidth(f"{n:,}").replace(",", "，"),
    ]


WRAPPERS = {
    "zh": "<reasoning>\nStep 1: 12 + 3 = 15.\n</reasoning>\n最终答案：{}",
    "xml": "<reasoning>\nStep 1: 12 + 3 = 15.\n</reasoning>\n<answer>\n{}\n</answer>\n",
    "hash": "Step 1: 12 + 3 = 15.\n#### {}",
}


@SETTINGS
@given(st.integers(-(10**12), 10**12))
def test_formatting_variants_of_a_number_score_as_that_number(n):
    references = [
        str(n),
        f"#### {n:,}",
        f"Some work <<1+1=2>>2\n#### {n}",
        n,
        float(n) if abs(n) < 2**52 else n,
    ]
    for fmt, wrapper in WRAPPERS.items():
        correctness = BUNDLES[fmt][0]
        for variant in _variants(n):
            completions = [
                wrapper.format(variant),
                [{"role": "assistant", "content": wrapper.format(variant)}],
            ]
            for reference in references:
                assert correctness(None, completions, answer=[reference] * 2) == [1.0, 1.0], (
                    fmt,
                    variant,
                    reference,
                )
            # Without the format's marker the same number earns the fallback credit (0.25 in these bundles).
            assert correctness(None, [f"So the answer is {variant}"], answer=[str(n)]) == [0.25], (
                fmt,
                variant,
            )
            assert correctness(None, [wrapper.format(variant)], answer=[str(n + 1)]) == [0.0]


@SETTINGS
@given(st.integers(-(10**6), 10**6), st.integers(0, 999), st.integers(0, 3))
def test_decimal_answers_compare_exactly(whole, frac, extra_zeros):
    value = Decimal(f"{whole}.{frac:03d}")
    shown = f"{whole}.{frac:03d}" + "0" * extra_zeros
    correctness = BUNDLES["zh"][0]
    assert correctness(None, [WRAPPERS["zh"].format(shown)], answer=[format(value.normalize(), "f")]) == [1.0]
    assert correctness(None, [WRAPPERS["zh"].format(shown)], answer=[value]) == [1.0]
    if frac:
        assert correctness(None, [WRAPPERS["zh"].format(f"{whole}")], answer=[str(value)]) == [0.0]


NUMBERISH = st.lists(
    st.sampled_from([*list("0123456789０９,，.．$＄/／ \t-−－﹣aZ最：\neE+٫٬٣٤\u00a0\u2009"), "1,080", "<<", "=", "1 1/2",
                     "1,00,000", "1e6"]), max_size=40
).map("".join)


@SETTINGS
@given(st.one_of(NUMBERISH, st.text(max_size=80)))
def test_fast_last_number_equals_the_regex_definition(text):
    tokens = NUMBER_RE.findall(text)
    assert last_number(text) == (tokens[-1] if tokens else None)


@SETTINGS
@given(st.one_of(ANSWERISH, st.text(max_size=60)))
def test_soft_steps_equal_the_soft_pattern(text):
    for name in ("zh", "xml", "hash"):
        fmt = answer_format(name)
        assert fmt.is_soft(text) == (fmt.soft_pattern.search(text) is not None), name


@SETTINGS
@given(ANSWERISH)
def test_strict_implies_soft_and_full_count(text):
    for name in ("zh", "xml", "hash"):
        fmt = answer_format(name)
        if fmt.is_strict(text):
            assert fmt.is_soft(text)
            assert fmt.count_score(text) == 1.0
        assert 0.0 <= fmt.count_score(text) <= 1.0


def _arabic(text: str) -> str:
    return "".join(chr(ord(c) - ord("0") + 0x0660) if "0" <= c <= "9" else c for c in text)


def _indian(n: int) -> str:
    digits = str(abs(n))
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    groups = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    return ",".join([head, *groups, tail])


@SETTINGS
@given(st.integers(-(10**12), 10**12))
def test_final_answer_forms_read_as_the_number(n):
    """Issue 26: every way users write n on a '#### ' line reads as n, for the loader and the rewards alike."""
    from kit.data.gsm8k import read_final_answer
    from kit.rewards.numbers import reference_value

    sign = "-" if n < 0 else ""
    forms = [f"{n:,}", f"{sign}{_indian(n)}", f"{n:,}".replace(",", " "), f"{n:,}".replace(",", "\u00a0"),
             _arabic(str(n)), _fullwidth(f"{n:,}").replace(",", "，"), f"{sign} {abs(n)}", f"**{n}**", f"{n}e0",
             f"{n}.0"]
    for form in forms:
        solution = f"work\n#### {form}"
        assert reference_value(solution) == n, form
        answer, reason = read_final_answer(solution)
        assert reason is None and reference_value(answer) == n, (form, answer, reason)


@SETTINGS
@given(st.integers(0, 10**6), st.integers(1, 50), st.integers(2, 60))
def test_mixed_numbers_and_fractions_are_exact(whole, num, den):
    from fractions import Fraction

    from kit.rewards.numbers import reference_value

    if num < den:
        assert reference_value(f"#### {whole} {num}/{den}") == whole + Fraction(num, den)
    assert reference_value(f"#### {num}/{den}") == Fraction(num, den)
