"""Golden table and behaviour tests for kit.rewards: exact scores on real-world completions, and safety."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kit.errors import KitError
from kit.formatting.prompts import (
    REASONING_SYSTEM_PROMPT_HASH,
    REASONING_SYSTEM_PROMPT_XML,
    REASONING_SYSTEM_PROMPT_ZH,
)
from kit.rewards import (
    DEFAULT_REWARDS,
    answer_format,
    completion_text,
    correctness_reward,
    int_reward,
    make_rewards,
    parse_number,
    reference_value,
    soft_format_reward,
    strict_format_reward,
    xml_count_reward,
)

NAMES = ["correctness_reward", "strict_format_reward", "soft_format_reward", "xml_count_reward", "int_reward"]
ZH = "<reasoning>\n3 boxes of 6 apples is 3*6=18 apples.\n</reasoning>\n最终答案：18"
XML = "<reasoning>\n3 boxes of 6 apples is 18 apples.\n</reasoning>\n<answer>\n18\n</answer>\n"
THIRD = 0.5 / 3

# (id, completion, reference, (correctness, strict, soft, count, int)) for the default "zh" bundle.
ZH_GOLDEN = [
    ("exact", ZH, "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("exact-final-newline", ZH + "\n", "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("ascii-colon", "<reasoning>3*6=18</reasoning>\n最终答案:18", "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("full-width-digits", "<reasoning>\n3*6\n</reasoning>\n最终答案：１８", "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("gsm8k-reference", ZH, "He has 3*6=<<3*6=18>>18 apples.\n#### 18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("int-reference", ZH, 18, (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("float-reference", ZH, 18.0, (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("decimal-18.0", "<reasoning>x</reasoning>\n最终答案：18.0", "#### 18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("negative", "<reasoning>x</reasoning>\n最终答案：-7", "#### -7", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("unicode-minus", "<reasoning>x</reasoning>\n最终答案：−7", "-7", (1.0, 0.5, 0.5, 0.5, 0.5)),
    (
        "blank-line-and-full-stop",
        "<reasoning>x</reasoning>\n\n最终答案：18。",
        "18",
        (1.0, 0.0, 0.5, 0.5, 0.5),
    ),
    ("space-before-colon", "<reasoning>x</reasoning>\n最终答案 ： 18", "18", (1.0, 0.0, 0.5, 0.5, 0.5)),
    ("thousands", "<reasoning>x</reasoning>\n最终答案：1,080", "#### 1,080", (1.0, 0.0, 0.5, 0.5, 0.5)),
    ("dollar-and-dot", "<reasoning>x</reasoning>\n最终答案：$1,080.", "1080", (1.0, 0.0, 0.5, 0.5, 0.5)),
    (
        "text-after-number",
        "<reasoning>x</reasoning>\n最终答案：18 个苹果（3×6）",
        "18",
        (1.0, 0.0, 0.5, 0.5, 0.5),
    ),
    (
        "trailing-line",
        "<reasoning>x</reasoning>\n最终答案：18\n希望对你有帮助！",  # 8 characters after the answer line
        "18",
        (1.0, 0.0, 0.5, 0.5 * (1 - 0.008), 0.5),
    ),
    ("wrong", "<reasoning>x</reasoning>\n最终答案：17", "18", (0.0, 0.5, 0.5, 0.5, 0.5)),
    ("no-number-after-marker", "<reasoning>18</reasoning>\n最终答案：十八", "18", (0.0, 0.0, 0.5, 0.5, 0.0)),
    ("fraction", "<reasoning>x</reasoning>\n最终答案：1/2", "0.5", (1.0, 0.0, 0.5, 0.5, 0.0)),
    ("non-integer", "<reasoning>x</reasoning>\n最终答案：2.5", "2.5", (1.0, 0.5, 0.5, 0.5, 0.0)),
    ("marker-only", "最终答案：１８", "18", (1.0, 0.0, 0.0, THIRD, 0.5)),
    (
        "last-marker-wins",
        "<reasoning>最终答案：17? no</reasoning>\n最终答案：18",
        "18",
        (1.0, 0.0, 0.5, 2 * THIRD, 0.5),
    ),
    (
        "duplicate-tags",
        "<reasoning>a</reasoning><reasoning>b</reasoning>\n最终答案：18",
        "18",
        (1.0, 0.0, 0.5, THIRD, 0.5),
    ),
    ("empty-reasoning", "<reasoning></reasoning>\n最终答案：18", "18", (1.0, 0.0, 0.5, 0.5, 0.5)),
    # Real-world endings without the marker: the last number counts, at half credit (FALLBACK_CREDIT).
    ("A: 18", "3 boxes of 6.\nA: 18", "18", (0.5, 0.0, 0.0, 0.0, 0.0)),
    ("The answer is 18.", "3*6=18 so... The answer is 18.", "#### 18", (0.5, 0.0, 0.0, 0.0, 0.0)),
    ("18.0", "18.0", "18", (0.5, 0.0, 0.0, 0.0, 0.0)),
    ("$1,080", "The total cost is $1,080", "#### 1,080", (0.5, 0.0, 0.0, 0.0, 0.0)),
    ("-7", "-7", "-7", (0.5, 0.0, 0.0, 0.0, 0.0)),
    ("subtraction-not-negative", "10-3=7", "7", (0.5, 0.0, 0.0, 0.0, 0.0)),
    ("unmarked-wrong", "The answer is 17.", "18", (0.0, 0.0, 0.0, 0.0, 0.0)),
    ("xml-format-judged-as-zh", XML, "18", (0.5, 0.0, 0.0, 2 * THIRD, 0.0)),
    # Chat-message completions (conversational prompts).
    ("chat", [{"role": "assistant", "content": ZH}], "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    (
        "chat-tool-turns",
        [
            {"role": "assistant", "content": None},
            {"role": "tool", "content": "18"},
            {"role": "assistant", "content": ZH},
        ],
        "18",
        (1.0, 0.5, 0.5, 0.5, 0.5),
    ),
    (
        "chat-text-parts",
        [{"role": "assistant", "content": [{"type": "text", "text": ZH}]}],
        "18",
        (1.0, 0.5, 0.5, 0.5, 0.5),
    ),
    ("single-message-dict", {"role": "assistant", "content": ZH}, "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("chat-user-only", [{"role": "user", "content": ZH}], "18", (0.0,) * 5),
    ("chat-no-content", [{"role": "assistant"}], "18", (0.0,) * 5),
    # Missing or garbage input scores 0 and never raises.
    ("none", None, "18", (0.0,) * 5),
    ("empty", "", "18", (0.0,) * 5),
    ("int", 18, "18", (0.0,) * 5),
    ("float-nan", float("nan"), "18", (0.0,) * 5),
    ("bytes", ZH.encode(), "18", (0.0,) * 5),
    ("list-of-lists", [[1, 2], [ZH]], "18", (0.0,) * 5),
    ("dict-garbage", {"content": {"nested": [ZH]}}, "18", (0.0,) * 5),
    ("list-of-strings", [ZH], "18", (0.0,) * 5),
    ("reference-none", ZH, None, (0.0, 0.5, 0.5, 0.5, 0.5)),
    ("reference-garbage", ZH, {"answer": 18}, (0.0, 0.5, 0.5, 0.5, 0.5)),
    ("reference-bool", ZH, True, (0.0, 0.5, 0.5, 0.5, 0.5)),
    ("reference-without-number", ZH, "eighteen", (0.0, 0.5, 0.5, 0.5, 0.5)),
    ("code-injection", "__import__('os').system('touch PWNED')", "18", (0.0,) * 5),
]

XML_GOLDEN = [
    ("exact", XML, "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("no-final-newline", XML.rstrip("\n"), "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("one-line", "<reasoning>3*6</reasoning><answer>18</answer>", "18", (1.0, 0.0, 0.5, 0.5, 0.5)),
    ("trailing-text", XML + "extra", "18", (1.0, 0.0, 0.5, 0.5 * (1 - 0.005), 0.5)),
    (
        "sentence-answer",
        XML.replace("\n18\n", "\nThe total is 3 × 6 = 18\n"),
        "18",
        (1.0, 0.5, 0.5, 0.5, 0.5),
    ),
    ("thousands-dollar", XML.replace("\n18\n", "\n$1,080\n"), "#### 1,080", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("decimal", XML.replace("\n18\n", "\n18.0\n"), "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("truncated", "<reasoning>\n3 boxes of 6", "18", (0.0, 0.0, 0.0, 0.125, 0.0)),
    ("unclosed-answer", "<reasoning>\nx\n</reasoning>\n<answer>\n18", "18", (1.0, 0.0, 0.0, 0.375, 0.5)),
    ("empty-answer", "<reasoning>\n18\n</reasoning>\n<answer>\n\n</answer>", "18", (0.0, 0.0, 0.5, 0.5, 0.0)),
    ("A: 18", "A: 18", "18", (0.5, 0.0, 0.0, 0.0, 0.0)),
    ("zh-judged-as-xml", ZH, "18", (0.5, 0.0, 0.0, 0.25, 0.0)),
    ("chat", [{"role": "assistant", "content": XML}], "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("none", None, "18", (0.0,) * 5),
]

HASH = "3 boxes of 6 apples: 3*6=18.\n#### 18"
HASH_GOLDEN = [
    ("exact", HASH, "18", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("thousands", HASH.replace("18", "1,080"), "#### 1,080", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("negative", "Lost 7.\n#### -7", "-7", (1.0, 0.5, 0.5, 0.5, 0.5)),
    ("marker-only", "#### 18", "18", (1.0, 0.0, 0.0, 0.5, 0.5)),
    ("trailing-line", HASH + "\nDone.", "18", (1.0, 0.0, 0.5, 0.5 * (1 - 0.005), 0.5)),
    ("dollar", "cost\n#### $1,080.", "1080", (1.0, 0.0, 0.5, 0.5, 0.5)),
    ("parenthesis-after", "work\n#### 18 (3 boxes of 6)", "18", (1.0, 0.0, 0.5, 0.5, 0.5)),
    ("The answer is 18.", "The answer is 18.", "18", (0.5, 0.0, 0.0, 0.0, 0.0)),
    ("garbage", [[{"x": 1}]], "18", (0.0,) * 5),
]


def _scores(funcs, completion, reference):
    return tuple(fn([None], [completion], answer=[reference])[0] for fn in funcs)


@pytest.mark.parametrize(
    ("completion", "reference", "expected"), [c[1:] for c in ZH_GOLDEN], ids=[c[0] for c in ZH_GOLDEN]
)
def test_golden_zh_default_functions(completion, reference, expected):
    assert _scores(DEFAULT_REWARDS, completion, reference) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("completion", "reference", "expected"), [c[1:] for c in XML_GOLDEN], ids=[c[0] for c in XML_GOLDEN]
)
def test_golden_xml(completion, reference, expected):
    assert _scores(make_rewards("xml"), completion, reference) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("completion", "reference", "expected"), [c[1:] for c in HASH_GOLDEN], ids=[c[0] for c in HASH_GOLDEN]
)
def test_golden_hash(completion, reference, expected):
    assert _scores(make_rewards("hash"), completion, reference) == pytest.approx(expected, abs=1e-9)


def test_module_functions_are_the_default_bundle_with_good_names():
    assert make_rewards() == list(DEFAULT_REWARDS)
    assert list(DEFAULT_REWARDS) == [
        correctness_reward,
        strict_format_reward,
        soft_format_reward,
        xml_count_reward,
        int_reward,
    ]
    for fmt in ("zh", "xml", "hash"):
        funcs = make_rewards(fmt, correct_weight=2.0)
        assert [f.__name__ for f in funcs] == NAMES
        assert all(f.__doc__ and "Range" in f.__doc__ for f in funcs)
        assert all(f.answer_format is answer_format(fmt) for f in funcs)
    assert all(f.__doc__ and "Range" in f.__doc__ for f in DEFAULT_REWARDS)


def test_weights_scale_and_are_validated():
    correctness, strict, soft, count, integer = make_rewards(
        "xml", correct_weight=2.0, format_weight=0.25, fallback_credit=0
    )
    assert correctness([None], [XML, "A: 18"], answer=["18", "18"]) == [2.0, 0.0]
    assert [
        strict([None], [XML])[0],
        soft([None], [XML])[0],
        count([None], [XML])[0],
        integer([None], [XML])[0],
    ] == [0.25] * 4
    assert correctness.reward_range == (0.0, 2.0)
    for bad in (
        {"correct_weight": -1},
        {"format_weight": float("nan")},
        {"fallback_credit": 1.5},
        {"correct_weight": "x"},
    ):
        with pytest.raises(KitError):
            make_rewards("zh", **bad)
    with pytest.raises(KitError, match="xml, zh, hash"):
        make_rewards("yaml")


def test_trl_calling_convention_and_reference_shapes():
    """TRL passes keyword arguments: completion_ids, trainer_state, log hooks and every dataset column."""
    out = correctness_reward(
        prompts=[[{"role": "user", "content": "q"}]] * 2,
        completions=[
            [{"role": "assistant", "content": ZH}],
            [{"role": "assistant", "content": "最终答案：17"}],
        ],
        completion_ids=[[1, 2], [3]],
        answer=["#### 18", "#### 18"],
        question=["q", "q"],
        trainer_state=object(),
        log_extra=lambda *a: None,
        log_metric=lambda *a: None,
    )
    assert out == [1.0, 0.0]
    assert correctness_reward(None, [ZH, ZH], "18") == [1.0, 1.0]  # a scalar reference repeats
    assert correctness_reward(None, [ZH, ZH], ["18"]) == [
        1.0,
        0.0,
    ]  # a short list: missing references score 0
    assert correctness_reward(None, [ZH]) == [0.0]  # no answer column at all
    assert correctness_reward(None, None, None) == []
    assert strict_format_reward(None, ZH) == [0.5]  # a lone string is one completion
    assert all(type(x) is float for x in correctness_reward(None, [ZH, "", None], ["18"] * 3))


def test_numpy_references():
    np = pytest.importorskip("numpy")
    assert correctness_reward(None, [ZH, ZH, ZH], answer=np.array([18, 17, 18])) == [1.0, 0.0, 1.0]
    assert reference_value(np.float64(18.0)) == 18 and reference_value(np.int64(-7)) == -7


def test_formats_carry_the_shared_system_prompts():
    assert answer_format("zh").system_prompt is REASONING_SYSTEM_PROMPT_ZH
    assert answer_format("xml").system_prompt is REASONING_SYSTEM_PROMPT_XML
    assert answer_format("hash").system_prompt is REASONING_SYSTEM_PROMPT_HASH
    assert answer_format("XML") is answer_format(answer_format("xml"))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,080", 1080),
        ("109,200,000", 109_200_000),
        ("$1,080.", 1080),
        ("-$7", -7),
        ("−7", -7),
        ("１，０８０", 1080),
        ("18.0", 18),
        ("0.50", 0.5),
        ("3/4", 0.75),
        ("48/2=24", 24),
        ("1/0", None),
        ("no digits", None),
        ("9" * 500, None),  # absurdly long: refused, not parsed
        (None, None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_reference_value_reads_gsm8k_solutions():
    assert reference_value("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72") == 72
    assert reference_value("#### 109,200,000") == 109_200_000
    assert reference_value("  18 ") == 18
    assert reference_value(float("inf")) is None
    assert reference_value([18]) is None


def test_completion_text_shapes():
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": "x"}]) == "x"
    assert completion_text([{"content": "no role counts as assistant"}]) == "no role counts as assistant"
    assert (
        completion_text([{"role": "assistant", "content": ["a", {"type": "text", "text": "b"}, 3]}]) == "ab"
    )
    assert completion_text(42) is None and completion_text([[]]) is None


INJECTIONS = [
    "__import__('os').system('touch PWNED')",
    "最终答案：__import__('os').system('touch PWNED')",
    "<reasoning>x</reasoning>\n<answer>\n__import__('os').system('touch PWNED')\n</answer>",
    "#### $(touch PWNED)",
    "`touch PWNED`",
    "eval(compile('open(\"PWNED\",\"w\")', 'x', 'exec'))",
]


def test_model_output_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for fmt in ("zh", "xml", "hash"):
        correctness, *others = make_rewards(fmt, correct_weight=1.5)
        assert correctness(None, INJECTIONS, answer=INJECTIONS) == [0.0] * len(INJECTIONS)
        for fn in others:
            fn(None, INJECTIONS, answer=INJECTIONS)
    assert not (tmp_path / "PWNED").exists()
    assert list(tmp_path.iterdir()) == []


def test_source_never_evaluates_text():
    source = "\n".join(p.read_text(encoding="utf-8") for p in Path("kit/rewards").resolve().glob("*.py"))
    for forbidden in (
        r"\beval\(",
        r"\bexec\(",
        r"literal_eval",
        r"sympy",
        r"__import__",
        r"(?<!re\.)\bcompile\(",
    ):
        assert not re.search(forbidden, source), forbidden


def test_pathological_input_is_fast():
    """Degenerate repetition (common when GRPO collapses) must not make any reward quadratic."""
    import time

    junk = [
        "<reasoning>" * 20_000,
        "</reasoning>\n<answer>\n" * 5_000 + "x",
        "<reasoning>\n" + "1,000," * 10_000,
        "最终答案：" * 10_000,
        "####" * 20_000,
        "9" * 200_000,
        "1,000" * 20_000,
        "1 " * 100_000,
        "-" * 100_000 + "1",
        "１，" * 50_000,
        " / 1" * 30_000,
    ]
    start = time.perf_counter()
    for fmt in ("zh", "xml", "hash"):
        for fn in make_rewards(fmt, format_weight=0.4):
            fn(None, junk, answer=["18"] * len(junk))
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("name", ["xml", "zh", "hash"])
def test_render_is_a_perfect_completion(name: str) -> None:
    from kit.rewards import answer_format, make_rewards

    fmt = answer_format(name)
    solution = "Tom has 3 boxes of 6 pens.\n3 * 6 = <<3*6=18>>18 pens.\n#### 1,080"
    completion = fmt.render(solution, "1080")
    assert "####" not in completion.replace("#### 1080", "")
    correctness, strict, *_ = make_rewards(name)
    assert correctness(None, [completion], answer=["#### 1,080"]) == [1.0]
    assert strict(None, [completion]) == [0.5]
