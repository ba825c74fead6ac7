"""The preference loader: flat pairs and sharegpt conversations (with a system turn) into one shape."""

from __future__ import annotations

import json
from pathlib import Path

from data_fixtures import (
    PAIRS_EXPECTED,
    PAIRS_LINES,
    SHAREGPT_EXPECTED,
    SHAREGPT_PROMPTS,
    SHAREGPT_RECORDS,
    assert_invariant,
    counts,
    write_jsonl,
)

from kit.data import load_preference


def test_flat_and_sharegpt_in_one_folder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS_LINES)
    (tmp_path / "sharegpt.json").write_text(
        json.dumps(SHAREGPT_RECORDS, ensure_ascii=False), encoding="utf-8"
    )
    dataset, report = load_preference(tmp_path)
    assert_invariant(report)
    assert counts(report.file("pairs.jsonl")) == PAIRS_EXPECTED
    assert counts(report.file("sharegpt.json")) == SHAREGPT_EXPECTED
    assert report.file("sharegpt.json").fixed == {"from_sharegpt": 2}
    assert dataset.column_names == ["prompt", "chosen", "rejected"]
    rows = dataset.to_list()
    assert rows[:2] == [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
    ]
    assert [r["prompt"] for r in rows[2:]] == SHAREGPT_PROMPTS  # the system turn leads the prompt
    assert rows[2]["chosen"] == "The Pacific Ocean." and rows[3]["rejected"] == "等于3。"
    assert all(isinstance(v, str) for r in rows for v in r.values())


def test_openai_style_messages_and_list_responses(tmp_path: Path) -> None:
    record = {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": {"role": "assistant", "content": "Go away."},
    }
    dataset, report = load_preference(
        write_jsonl(tmp_path / "p.jsonl", [record, {"prompt": 1, "chosen": [3], "rejected": "x"}])
    )
    assert_invariant(report)
    assert dataset.to_list() == [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}]
    assert report.skipped == {"bad_field_type": 1}
