"""The loaders on the repository's own sample files under data/ (skipped until those files exist)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from data_fixtures import assert_invariant

from kit.data import load_alpaca, load_gsm8k, load_medical, load_preference

DATA = Path(__file__).resolve().parent.parent / "data"


def _need(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists() or not any(path.rglob("*.*")):
        pytest.skip(f"{path} is not there yet (the sample data is written separately)")
    return path


def test_sample_medical_folders_decode_as_gbk_with_departments() -> None:
    dataset, report = load_medical(_need("medical"))
    assert_invariant(report)
    assert report.rows_kept > 0
    assert {f.encoding for f in report.files} <= {"gbk", "gb18030", "utf-8", "utf-8-sig"}
    assert set(dataset["department"]) <= {"内科", "外科", "儿科"}
    text = "".join(dataset["input"]) + "".join(dataset["output"])
    assert re.search(r"[\u4e00-\u9fff]", text) and "\ufffd" not in text  # Chinese, no replacement characters
    assert not any(q.strip() != q or "\u3000" in q for q in dataset["input"])


def test_sample_json_sets_load_cleanly() -> None:
    for loader, folder in ((load_alpaca, "alpaca"), (load_gsm8k, "gsm8k"), (load_preference, "preference")):
        dataset, report = loader(_need(folder))
        assert_invariant(report)
        assert report.rows_kept > 0, folder
        assert "invalid_json" not in report.skipped, folder
        if folder == "gsm8k":
            assert all(re.fullmatch(r"-?\d+(\.\d+)?", a) for a in dataset["answer"])
            assert not any("<<" in s for s in dataset["solution"])
        if folder == "alpaca":
            assert not any(x.startswith(("输入：", "输入:")) for x in dataset["input"])
