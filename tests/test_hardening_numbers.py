"""Issue 26: one number parser for the GSM8K loader and the rewards; forms it cannot read are named reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.data import load_gsm8k
from kit.rewards import make_rewards
from kit.rewards.numbers import read_answer, reference_value

# The final-answer line as users write it -> the loader's answer text (None: skipped, with that reason).
FORMS = {
    "3/4": "0.75",
    "1/3": "1/3",
    "1 1/2": "1.5",
    "1,00,000": "100000",
    "1 000": "1000",
    "1\u00a0000": "1000",
    "3,5": "3.5",
    "2,75": "2.75",
    "1e6": "1000000",
    "2.5E-3": "0.0025",
    "- 5": "-5",
    "−5": "-5",
    "１，２３４": "1234",
    "٤٢": "42",
    "١٬٢٣٤٫٥": "1234.5",
    "४२": "42",
    "**18** eggs": "18",
    "$1,234.50": "1234.50",
    "\\frac{3}{4}": "0.75",
    "3 apples and 4 pears": "ambiguous_answer",
    "1,2345": "ambiguous_answer",
    "2/0": "unreadable_answer",
    "many": "non_numeric_answer",
}


@pytest.mark.parametrize("written", sorted(FORMS))
def test_final_answer_forms_load_and_score_alike(tmp_path: Path, written: str) -> None:
    expected = FORMS[written]
    path = tmp_path / "math.jsonl"
    rows = [{"question": "q1", "answer": f"work\n#### {written}"}, {"question": "q2", "answer": "w\n#### 7"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    dataset, report = load_gsm8k(path)
    if expected.endswith("_answer"):
        assert report.totals == {"rows_read": 2, "rows_kept": 1, "skipped": {expected: 1}}
        assert reference_value(rows[0]["answer"]) is None
        return
    assert report.totals["rows_kept"] == 2
    answer = dataset[0]["answer"]
    assert answer == expected
    # The rewards read the loaded answer, the raw solution and the written form to the same value.
    value = reference_value(answer)
    assert value is not None and reference_value(rows[0]["answer"]) == value
    correctness = make_rewards("hash", correct_weight=1.0, format_weight=0.5)[0]
    assert correctness(None, [f"steps\n#### {written}"], answer=[answer]) == [1.0]
    assert correctness(None, [f"steps\n#### {answer}"], answer=[rows[0]["answer"]]) == [1.0]


def test_markdown_after_the_answer_line_and_headings_do_not_change_it(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    rows = [
        {"question": "a", "answer": "work\n#### 42\n\n#### Explanation\nWe used 3 eggs."},
        {"question": "b", "answer": "#### Step 1\n2 + 2 = 4\n#### 4\n\n---\n*Note: 5 more*"},
        {"question": "c", "answer": "#### 18\n##### Details 5"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    dataset, _ = load_gsm8k(path)
    assert dataset["answer"] == ["42", "4", "18"]
    assert [reference_value(r["answer"]) for r in rows] == [42, 4, 18]


def test_read_answer_reasons() -> None:
    assert read_answer("1 1/2")[:2] == (pytest.approx(1.5), None)
    assert read_answer("3 and 4")[1] == "ambiguous_answer"
    assert read_answer("")[1] == "non_numeric_answer"
