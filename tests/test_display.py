"""kit.evaluation.display: held-out items shown in full, chosen honestly, readable as text and as HTML."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kit.errors import KitError
from kit.evaluation.display import (
    SEP,
    answer_view,
    block_lines,
    pick_items,
    preference_view,
    question_of,
    scores_line,
    show_answers,
    wrap,
)

LONG = ("The committee approved the new budget on Monday after a long debate about the costs of the new bridge, "
        "the school repairs and the library, and it asked the mayor to report back within three months.")


def _table(answers: list[str], scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame({
        "idx": range(len(answers)),
        "prompt": [f"<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n<|im_start|>user\nQ{i}?<|im_end|>\n"
                   "<|im_start|>assistant\n" for i in range(len(answers))],
        "reference": [f"ref {i}" for i in range(len(answers))],
        "prediction": answers,
        "rouge_l": scores,
    })


def test_wrap_keeps_every_character_and_respects_the_width() -> None:
    for text, width in ((LONG, 40), ("可能是痛痰，" * 30, 30), ("x" * 130, 50), ("a\nb\n\nc", 10)):
        lines = wrap(text, width)
        assert all(sum(2 if "\u4e00" <= ch <= "\u9fff" or ch == "，" else 1 for ch in ln) <= width for ln in lines)
        assert "".join("".join(lines).split()) == "".join(text.split())  # nothing cut, nothing added
    assert wrap("a\nb", 10) == ["a", "b"]


def test_question_of_drops_the_template_scaffolding() -> None:
    rendered = _table(["x"], [0.0])["prompt"][0]
    assert question_of(rendered) == "Q0?"
    medical = "<|im_start|>user\n请回答以下医疗相关问题\n\n问题：头疼怎么办？<|im_end|>\n<|im_start|>assistant\n"
    assert question_of(medical) == "头疼怎么办？"
    assert question_of({"instruction": "Translate.", "input": "欢迎光临"}) == "Translate.\n欢迎光临"
    assert question_of({"instruction": "请回答以下医疗相关问题", "input": "头疼怎么办？"}, style="medical") == "头疼怎么办？"
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "How many?"}]
    assert question_of({"prompt": messages, "answer": "3"}) == "How many?"
    assert question_of({"messages": [*messages, {"role": "assistant", "content": "3"}]}) == "How many?"
    alpaca = "Below is an instruction.\n\n### Instruction:\nName a fruit.\n\n### Input:\nred\n\n### Response:\n"
    assert question_of(alpaca) == "Name a fruit.\nred"


def test_pick_items_names_the_biggest_gain_and_loss_then_seeded_random() -> None:
    deltas = [0.1, -0.4, 0.0, 0.7, math.nan, 0.2]
    picked = pick_items(deltas, k=4, seed=1)
    assert picked[:2] == [(3, "gain"), (1, "loss")]
    assert len({i for i, _ in picked}) == 4 and all(why == "random" for _, why in picked[2:])
    assert pick_items(deltas, k=4, seed=1) == picked  # seeded: the same items every run
    assert pick_items([0.0, 0.0], k=1)[0][1] == "random"  # no change: nothing is called a gain
    assert pick_items([], k=3) == []


def test_answer_view_shows_full_answers_as_text_and_html() -> None:
    before = _table(["short", LONG, "b"], [0.1, 0.5, 0.2])
    after = _table([LONG + " END", "tiny", "c"], [0.9, 0.1, 0.2])
    view = answer_view(before, after, k=3)
    text = view.text(width=60)
    assert "END" in text and "..." not in text  # wrapped, never cut
    assert "biggest gain" in text and "biggest loss" in text and "rouge_l 0.100 → 0.900 (+0.800)" in text
    assert "system" not in text and "Q0?" in text
    assert all(SEP in line for line in text.splitlines()[1:] if not line.startswith("──"))
    html = view._repr_html_()
    assert "END" in html and "<table" in html and "&lt;" not in html.split("Q0?")[0][-5:]
    zh = answer_view(before, after, k=1, lang="zh").text()
    assert "提升最大" in zh and "微调前" in zh


def test_answer_view_rejects_mismatched_tables() -> None:
    with pytest.raises(KitError, match="same held-out items"):
        answer_view(_table(["a"], [0.0]), _table(["a", "b"], [0.0, 0.1]))
    with pytest.raises(KitError, match="metric"):
        answer_view(_table(["a"], [0.0]), _table(["a"], [0.0]), metric="bleu")
    with pytest.raises(KitError, match="one question per item"):
        answer_view(_table(["a"], [0.0]), _table(["a"], [0.0]), questions=["x", "y"])


def test_show_answers_prints_plain_text_outside_a_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    show_answers(_table(["a"], [0.0]), _table(["b"], [1.0]), k=1)
    out = capsys.readouterr().out
    assert "item 1 of 1" in out and f"after    {SEP}b" in out


def test_grpo_tables_and_preference_pairs() -> None:
    grpo = pd.DataFrame({"prompt": ["<|im_start|>user\n2+2?<|im_end|>\n"], "answer": ["4"],
                         "completion": ["最终答案：4"], "accuracy": [1.0]})
    base = grpo.assign(completion=["5"], accuracy=[0.0])
    assert "最终答案：4" in answer_view(base, grpo, metric="accuracy", k=1).text()
    pairs = [{"prompt": [{"role": "user", "content": "Capital of Canada?"}],
              "chosen": [{"role": "assistant", "content": "Ottawa."}],
              "rejected": [{"role": "assistant", "content": "Toronto."}]}]
    text = preference_view(pairs, [-0.2], [0.3], k=1).text()
    assert "Capital of Canada?" in text and "Toronto." in text and "chosen" in text
    assert "prefers the rejected answer (margin -0.200)" in text and "prefers the chosen answer" in text


def test_block_lines_print_a_verdict_on_every_gain() -> None:
    block = {"split": "holdout", "n": 8, "before": {"rouge_l": 0.1, "bleu": 0.2, "x": None},
             "after": {"rouge_l": 0.3, "bleu": 0.1, "x": None},
             "gain": {"rouge_l": {"value": 0.2, "ci95": [0.1, 0.3]}, "bleu": {"value": -0.1, "ci95": [-0.2, 0.05]},
                      "x": {"value": None, "ci95": [None, None]}}}
    text = block_lines(block)
    assert "rouge_l: 0.1000 -> 0.3000 (gain +0.2000, ci95 +0.1000..+0.3000, better)" in text
    assert "bleu" in text and "unclear" in text and "no scorable item" in text
    assert "更好" in block_lines(block, lang="zh") and "不确定" in block_lines(block, lang="zh")


def test_scores_line() -> None:
    table = _table(["a b", ""], [0.5, 0.0]).assign(distinct_2=[1.0, math.nan])
    line = scores_line(table, ("rouge_l", "distinct_2"), "before")
    assert line == "before: rouge_l 0.2500, distinct_2 1.0000 (mean over 2 held-out items, 1 empty answers)"
