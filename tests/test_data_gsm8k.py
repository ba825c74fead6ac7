"""The GSM8K loader and final-answer extraction: separators, negatives, annotations, curly quotes."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import GSM8K_ANSWERS, GSM8K_EXPECTED, GSM8K_LINES, assert_invariant, counts, write_jsonl

from kit.data import extract_final_answer, load_gsm8k, strip_calculator_annotations
from kit.formatting.prompts import REASONING_SYSTEM_PROMPT, REASONING_SYSTEM_PROMPT_HASH


@pytest.mark.parametrize(
    ("solution", "expected"),
    [
        ("so 72\n#### 72", "72"),
        ("#### 1,080", "1080"),
        ("#### 109,200,000", "109200000"),
        ("#### -11", "-11"),
        ("#### −5", "-5"),  # U+2212 minus sign
        ("#### 2.5", "2.5"),
        ("#### .5", "0.5"),
        ("#### $1,234.50", "1234.50"),
        ("#### “42”", "42"),
        ("#### ‘7’.", "7"),
        ("####18", "18"),
        ("#### 5\nmore text\n#### 6", "6"),  # the last #### line wins
        ("The answer is 18.", None),
        ("#### many", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_final_answer(solution: str | None, expected: str | None) -> None:
    assert extract_final_answer(solution) == expected  # type: ignore[arg-type]


def test_strip_calculator_annotations() -> None:
    text = "48/2 = <<48/2=24>>24 and <<24*45=1080>>1080, then <<4-15=-11>>-11"
    assert strip_calculator_annotations(text) == "48/2 = 24 and 1080, then -11"


def test_load_exact_counts_prompts_and_answers(tmp_path: Path) -> None:
    dataset, report = load_gsm8k(write_jsonl(tmp_path / "train.jsonl", GSM8K_LINES))
    assert_invariant(report)
    assert counts(report.files[0]) == GSM8K_EXPECTED
    assert report.files[0].fixed == {"annotations_stripped": 5}
    assert dataset["answer"] == GSM8K_ANSWERS
    first = dataset[0]
    assert first["prompt"] == [
        {"role": "system", "content": REASONING_SYSTEM_PROMPT},
        {"role": "user", "content": GSM8K_LINES[0]["question"]},
    ]
    assert "“April and May”" in first["question"]  # curly quotes kept in the question
    assert first["solution"] == (
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n#### 72"
    )
    assert not any("<<" in s for s in dataset["solution"])


def test_plain_string_prompts_and_other_system_prompt(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", GSM8K_LINES[:2])
    dataset, report = load_gsm8k(path, system_prompt=REASONING_SYSTEM_PROMPT_HASH, chat=False)
    assert_invariant(report)
    assert dataset[1]["prompt"] == f"{REASONING_SYSTEM_PROMPT_HASH}\n\nHow many minutes are in 18 hours?"
    dataset, _ = load_gsm8k(path, system_prompt=None)
    assert dataset[1]["prompt"] == [{"role": "user", "content": "How many minutes are in 18 hours?"}]
