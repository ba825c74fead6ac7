"""Where data comes from: parquet, Arrow, save_to_disk folders, CSV for any loader, hub ids (offline), mappings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_fixtures import GSM8K_LINES, assert_invariant, counts, write_jsonl

from kit.data import load_alpaca, load_chat, load_gsm8k, load_medical, load_preference
from kit.data.sources import parse_columns, split_hub_id
from kit.errors import KitError

QA_ROWS = [
    {"question": "What is 2+2?", "answer": "4"},
    {"question": "Capital of France?", "answer": "Paris"},
    {"question": "", "answer": "orphan"},  # empty_instruction
    {"question": "What is 2+2?", "answer": "4"},  # duplicate
]
QA_EXPECTED = {"rows_read": 4, "rows_kept": 2, "skipped": {"duplicate": 1, "empty_instruction": 1}}
MAPPING = {"instruction": "question", "output": "answer"}


def _dataset(rows: list[dict]) -> object:
    from datasets import Dataset

    return Dataset.from_list(rows)


def test_parquet_with_a_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "qa.parquet"
    _dataset(QA_ROWS).to_parquet(str(path))
    dataset, report = load_alpaca(path, columns=MAPPING)
    assert_invariant(report)
    assert counts(report.files[0]) == QA_EXPECTED
    assert dataset.to_list() == [
        {"instruction": "What is 2+2?", "input": "", "output": "4"},
        {"instruction": "Capital of France?", "input": "", "output": "Paris"},
    ]
    assert report.skipped_rows(5)["duplicate"] == [
        {"file": str(path), "where": "row 4", "row": '{"question": "What is 2+2?", "answer": "4"}'}
    ]


def test_save_to_disk_folder_dataset_dict_and_split(tmp_path: Path) -> None:
    from datasets import DatasetDict

    folder = tmp_path / "saved"
    DatasetDict({"train": _dataset(QA_ROWS), "test": _dataset(QA_ROWS[1:2])}).save_to_disk(str(folder))
    dataset, report = load_alpaca(folder, columns="instruction=question,output=answer")
    assert_invariant(report)
    assert counts(report.files[0]) == QA_EXPECTED and report.source == str(folder)
    dataset, _ = load_alpaca(folder, columns=MAPPING, split="test")
    assert dataset["instruction"] == ["Capital of France?"]
    with pytest.raises(KitError, match=r"no split 'dev'; its splits are \['train', 'test'\]"):
        load_alpaca(folder, columns=MAPPING, split="dev")
    single = tmp_path / "single"
    _dataset(QA_ROWS).save_to_disk(str(single))
    assert counts(load_alpaca(single, columns=MAPPING)[1].files[0]) == QA_EXPECTED


def test_arrow_file_stream_and_ipc_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather

    folder = tmp_path / "saved"
    _dataset(QA_ROWS).save_to_disk(str(folder))
    stream = next(folder.glob("*.arrow"))  # what datasets writes: the IPC stream format
    assert counts(load_alpaca(stream, columns=MAPPING)[1].files[0]) == QA_EXPECTED
    ipc = tmp_path / "qa.arrow"
    feather.write_feather(pa.Table.from_pylist(QA_ROWS), str(ipc), compression="uncompressed")
    assert counts(load_alpaca(ipc, columns=MAPPING)[1].files[0]) == QA_EXPECTED


def test_csv_for_json_loaders_any_codec(tmp_path: Path) -> None:
    path = tmp_path / "gsm.csv"
    lines = ["question,answer"] + [
        '"{}","{}"'.format(r["question"].replace('"', '""'), r["answer"].replace('"', '""'))
        for r in GSM8K_LINES[:3]
    ]
    path.write_bytes("\n".join(lines).encode("utf-8"))
    dataset, report = load_gsm8k(path)
    assert counts(report.files[0]) == {"rows_read": 3, "rows_kept": 3, "skipped": {}}
    assert dataset["answer"] == ["72", "1080", "109200000"]
    zh = tmp_path / "zh.csv"
    zh.write_bytes("指令,回答\n翻译：你好,Hello\n翻译：谢谢,Thanks,多余\n".encode("gbk"))
    dataset, report = load_alpaca(zh, columns={"instruction": "指令", "output": "回答"})
    assert report.files[0].encoding == "gbk"
    assert counts(report.files[0]) == {"rows_read": 2, "rows_kept": 1, "skipped": {"bad_row": 1}}
    assert dataset[0] == {"instruction": "翻译：你好", "input": "", "output": "Hello"}


def test_folder_walk_mixes_formats_and_skips_registry_files(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "a", "output": "b"}])
    _dataset([{"instruction": "c", "output": "d"}]).to_parquet(str(tmp_path / "b.parquet"))
    (tmp_path / "dataset_info.json").write_text('{"x": {"file_name": "a.jsonl"}}', encoding="utf-8")
    dataset, report = load_alpaca(tmp_path)
    assert [Path(f.path).name for f in report.files] == ["a.jsonl", "b.parquet"]
    assert dataset["instruction"] == ["a", "c"]


def test_medical_from_parquet_with_mapping(tmp_path: Path) -> None:
    rows = [
        {"dept": "心血管科", "q": "血压高怎么办？", "a": "少吃盐。", "t": "高血压"},
        {"dept": "消化科", "q": "无", "a": "规律饮食。", "t": "胃痛怎么办？"},  # title becomes the question
        {"dept": "消化科", "q": "", "a": "x", "t": ""},  # empty_question
    ]
    path = tmp_path / "IM_内科.parquet"
    _dataset(rows).to_parquet(str(path))
    mapping = {"question": "q", "answer": "a", "title": "t", "department": "dept"}
    dataset, report = load_medical(path, columns=mapping)
    assert_invariant(report)
    assert counts(report.files[0]) == {"rows_read": 3, "rows_kept": 2, "skipped": {"empty_question": 1}}
    assert report.files[0].fixed == {"title_as_question": 1}
    assert dataset["input"] == ["血压高怎么办？", "胃痛怎么办？"]
    assert set(dataset["department"]) == {"内科"} and dataset["sub_department"] == ["心血管科", "消化科"]
    with pytest.raises(KitError, match=r"no question column; columns found: \['dept', 'q', 'a', 't'\]"):
        load_medical(path)


def test_mapping_errors_are_clear(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"q": "a", "a": "b"}])
    with pytest.raises(KitError, match=r"has no field \['question'\]"):
        load_alpaca(path, columns={"question": "q"})
    with pytest.raises(KitError, match="is not NAME=COLUMN"):
        parse_columns("instruction")
    assert parse_columns(" instruction = q , output=a ") == {"instruction": "q", "output": "a"}


@pytest.mark.parametrize(
    ("loader", "rows", "fix"),
    [
        (
            load_alpaca,
            [{"question": "q", "answer": "a"}],
            "columns={'instruction': 'question', 'output': 'answer'}",
        ),
        (
            load_gsm8k,
            [{"problem": "q", "solution": "#### 1"}],
            "columns={'question': 'problem', 'answer': 'solution'}",
        ),
        (
            load_preference,
            [{"question": "q", "chosen": "a", "rejected": "b"}],
            "columns={'prompt': 'question'}",
        ),
        (load_chat, [{"conversation": []}], "columns={'messages': 'conversation'}"),
    ],
)
def test_zero_rows_is_an_error_with_the_mapping(tmp_path: Path, loader, rows, fix) -> None:
    with pytest.raises(KitError) as info:
        loader(write_jsonl(tmp_path / "x.jsonl", rows))
    message = str(info.value)
    assert "kept 0 of 1 rows" in message and "columns found:" in message and fix in message


def test_empty_json_and_header_only_csv_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]\n", encoding="utf-8")
    with pytest.raises(KitError, match=r"no rows \(the file is empty or holds only a header\)"):
        load_alpaca(empty)
    header = tmp_path / "header.csv"
    header.write_text("question,answer\n", encoding="utf-8")
    with pytest.raises(KitError, match=r"columns found: \['question', 'answer'\]"):
        load_gsm8k(header)


def test_hub_id_parsing_and_local_typos() -> None:
    assert split_hub_id("openai/gsm8k:main:train") == ("openai/gsm8k", "main", "train")
    assert split_hub_id("yahma/alpaca-cleaned") == ("yahma/alpaca-cleaned", None, None)
    assert split_hub_id("openai/gsm8k::test") == ("openai/gsm8k", None, "test")
    assert split_hub_id("a/b/c") is None
    with pytest.raises(KitError, match="no such file or folder"):
        load_alpaca("data/alpaca/does-not-exist.json")


def test_hub_id_offline_gives_one_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    result = subprocess.run(
        [sys.executable, "-m", "kit", "data", "report", "openai/gsm8k:main:train", "--kind", "gsm8k"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "openai/gsm8k:main:train" in err and "HF_HUB_OFFLINE" in err and "HF_DATASETS_OFFLINE" in err
    assert "save_to_disk" in err and "set data_path to that folder or file" in err


def test_csv_cells_holding_json_lists(tmp_path: Path) -> None:
    import csv

    path = tmp_path / "chat.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["messages", "tools"])
        turns = [{"role": "user", "content": "Hi, there"}, {"role": "assistant", "content": "Hello"}]
        writer.writerow([json.dumps(turns), ""])
        writer.writerow(["[not json", ""])
    dataset, report = load_chat(path)
    assert counts(report.files[0]) == {"rows_read": 2, "rows_kept": 1, "skipped": {"bad_field_type": 1}}
    assert dataset[0]["messages"][0]["content"] == "Hi, there"
    alpaca = tmp_path / "alpaca.csv"
    with open(alpaca, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["instruction", "output", "history"])
        writer.writerow(["And 2+2?", "4", json.dumps([["1+1?", "2"]])])
    assert load_alpaca(alpaca)[0][0]["history"] == [["1+1?", "2"]]
