"""LoadReport (invariant, JSON form, text, table, token stats) and the train/held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import ALPACA_LINES, assert_invariant, medical_tree, tiny_tokenizer, write_jsonl

from kit.data import FileReport, LoadReport, load_alpaca, load_medical, train_holdout_split
from kit.errors import KitError


def test_invariant_is_enforced() -> None:
    good = FileReport(path="a", rows_read=3, rows_kept=2, skipped={"duplicate": 1})
    LoadReport(kind="x", source="a", files=[good])
    bad = FileReport(path="b", rows_read=3, rows_kept=1, skipped={"duplicate": 1})
    with pytest.raises(AssertionError, match="rows_read 3"):
        LoadReport(kind="x", source="b", files=[good, bad])


def test_to_dict_str_and_table(tmp_path: Path) -> None:
    _dataset, report = load_medical(medical_tree(tmp_path / "medical"))
    assert_invariant(report)
    data = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert set(data) >= {"files", "totals", "quality"}
    assert set(data["files"][0]) >= {"path", "encoding", "rows_read", "rows_kept", "skipped"}
    assert data["totals"]["rows_read"] == 13 and data["totals"]["rows_kept"] == 8
    assert data["quality"]["records"] == 8
    text = str(report)
    assert "kept 8 of 13 rows" in text and "[gbk]" in text and "balance by department: 内科=5" in text
    table = report.table()
    assert list(table["file"])[-1] == "TOTAL" and list(table["rows_read"]) == [8, 2, 3, 13]


def test_token_statistics_with_a_tokenizer(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer()
    _, report = load_alpaca(write_jsonl(tmp_path / "a.jsonl", ALPACA_LINES))
    quality = report.quality(tokenizer)
    assert set(quality["tokens"]) == {"instruction", "input", "output"}
    assert quality["tokens"]["output"]["max"] >= 1
    assert "output tokens:" in report.summary(tokenizer=tokenizer)


def test_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    from datasets import Dataset

    dataset = Dataset.from_dict({"i": list(range(50))})
    train, held = train_holdout_split(dataset, 0.1, seed=3407)
    assert (len(train), len(held)) == (45, 5)
    assert sorted(list(train["i"]) + list(held["i"])) == list(range(50))
    again_train, again_held = train_holdout_split(dataset, 0.1, seed=3407)
    assert list(again_held["i"]) == list(held["i"]) and list(again_train["i"]) == list(train["i"])
    assert list(train_holdout_split(dataset, 0.1, seed=1)[1]["i"]) != list(held["i"])
    assert list(train["i"]) == sorted(train["i"])  # original order kept on each side
    assert len(train_holdout_split(dataset, 7)[1]) == 7


def test_split_edges_and_errors() -> None:
    from datasets import Dataset

    two = Dataset.from_dict({"i": [0, 1]})
    train, held = train_holdout_split(two, 0.01)
    assert (len(train), len(held)) == (1, 1)  # at least one on each side
    train, held = train_holdout_split(two, 0.99)
    assert (len(train), len(held)) == (1, 1)
    with pytest.raises(KitError, match="at least 2"):
        train_holdout_split(Dataset.from_dict({"i": [0]}))
    for bad in (0.0, 1.0, 1.5, 0, 2, True, "10%"):
        with pytest.raises(KitError):
            train_holdout_split(two, bad)  # type: ignore[arg-type]
