"""The sample sets under data/ themselves: sizes that match data/README.md, enough held-out items, the house
style of the grown records, and the GSM8K generator reproducing its part of the files."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import sys
from pathlib import Path

import pytest

from kit.data.split import holdout_size

DATA = Path(__file__).resolve().parent.parent / "data"
MEDICAL = ["IM_内科/内科问答.csv", "Surgical_外科/外科问答.csv", "Pediatric_儿科/儿科问答.csv"]


def _records(rel: str) -> list:
    path = DATA / rel
    if path.suffix == ".csv":
        return list(csv.reader(io.StringIO(path.read_bytes().decode("gbk"), newline="")))[1:]
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines()]


def _readme_counts() -> dict[str, int]:
    table = re.findall(r"^\| `([^`]+)` \|.*\| (\d+)[^|]*\|$", (DATA / "README.md").read_text(encoding="utf-8"), re.M)
    return {rel: int(n) for rel, n in table}


def test_readme_table_gives_the_true_record_counts() -> None:
    counts = _readme_counts()
    assert len(counts) == 9, counts
    for rel, documented in counts.items():
        assert len(_records(rel)) == documented, rel


@pytest.mark.parametrize("rel", ["alpaca/alpaca_en.json", "alpaca/alpaca_zh.jsonl", "gsm8k/train.jsonl",
                                 "gsm8k/train_zh.jsonl", "preference/pairs.jsonl", "medical"])
def test_each_set_holds_out_at_least_32_distinct_records_at_0_2(rel: str) -> None:
    records = [r for f in MEDICAL for r in _records(f"medical/{f}")] if rel == "medical" else _records(rel)
    distinct = {json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records}
    assert holdout_size(len(distinct), 0.2) >= 32, (rel, len(distinct))


def test_grown_medical_rows_follow_the_short_house_style_and_stay_gb2312() -> None:
    for rel in MEDICAL:
        raw = (DATA / "medical" / rel).read_bytes()
        rows = _records(f"medical/{rel}")
        assert len(rows) >= 81, rel
        for n, (_dept, _title, _ask, answer) in enumerate(rows[17:], 18):
            assert 40 <= len(answer) <= 90, (rel, n, len(answer))
            assert answer.startswith("可能") and "建议" in answer and answer.endswith("就医。"), (rel, n)
        tail = raw[raw.index(rows[17][1].encode("gbk")):]
        tail.decode("gb2312")  # every grown row is plain GB2312 ...
    raw = (DATA / "medical" / MEDICAL[0]).read_bytes()
    with pytest.raises(UnicodeDecodeError) as failed:
        raw.decode("gb2312")
    assert failed.value.start == raw.index("飯".encode("gbk"))  # ... so 内科 fails only at data row 16's 飯
    assert failed.value.start > len(raw) // 4


def _generator():
    spec = importlib.util.spec_from_file_location("generate_gsm8k", DATA / "generate_gsm8k.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_gsm8k_generator_reproduces_the_generated_records_and_every_annotation_checks() -> None:
    gen = _generator()
    for rel, written, lang in (("gsm8k/train.jsonl", 57, 0), ("gsm8k/train_zh.jsonl", 25, 1)):
        records = _records(rel)
        generated = [pair[lang] for pair in gen.generate(len(records) - written)]
        assert records[written:] == generated, rel
        assert all(not gen.check_record(r) for r in records), rel
    assert gen.check_record({"question": "q", "answer": "2*3 = <<2*3=7>>7\n#### 7"})  # a wrong step is caught
