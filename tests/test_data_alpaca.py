"""The alpaca loader: prefixes, whitespace, empty inputs, placeholders, broken rows, duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import ALPACA_EXPECTED, ALPACA_LINES, LFS_POINTER, assert_invariant, counts, write_jsonl

from kit.data import load_alpaca
from kit.errors import KitError


def test_jsonl_quirks_exact_counts_and_records(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "alpaca.jsonl", [*ALPACA_LINES[:9], *ALPACA_LINES[9:]])
    dataset, report = load_alpaca(path)
    assert_invariant(report)
    assert counts(report.files[0]) == ALPACA_EXPECTED
    assert report.files[0].encoding == "utf-8"
    assert report.files[0].notes == {"first_invalid_json_line": 9, "first_non_object_row": 8}
    assert report.files[0].fixed == {"prefix_stripped": 2, "whitespace_stripped": 2}
    assert dataset.to_list() == [
        {"instruction": "Say hi", "input": "", "output": "Hi"},
        {"instruction": "翻译成英文", "input": "你好", "output": "Hello"},
        {"instruction": "翻译成英文", "input": "早上好", "output": "Good morning"},
        {"instruction": "Greet {{name}}", "input": "", "output": "Hello {{name}}!"},
        {"instruction": "d", "input": "", "output": "e"},
        {"instruction": "全角空格", "input": "", "output": "好"},
    ]
    quality = report.quality()
    assert quality["template_placeholders"] == 1
    assert quality["empty_fields"] == {"instruction": 0, "input": 4, "output": 0}  # ≥ 1/3 have no input
    assert quality["duplicates"] == {"skipped": 1, "remaining": 0}
    assert quality["diversity"]["distinct_openings"] == 5  # '翻译成英' twice
    assert quality["chars"]["output"]["max"] == len("Hello {{name}}!")


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(
        '\n{"instruction": "a", "output": "b"}\n\n\n{"instruction": "c", "output": "d"}\n', encoding="utf-8"
    )
    _, report = load_alpaca(path)
    assert_invariant(report)
    assert counts(report.files[0]) == {"rows_read": 2, "rows_kept": 2, "skipped": {}}


def test_json_list_folder_and_cross_file_duplicates(tmp_path: Path) -> None:
    records = [
        {"instruction": f"task {i}", "input": "" if i % 3 else "ctx", "output": f"out {i}"} for i in range(6)
    ]
    (tmp_path / "a.json").write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    write_jsonl(tmp_path / "sub" / "b.jsonl", [records[0], {"instruction": "new", "output": "x"}])
    dataset, report = load_alpaca(tmp_path)
    assert_invariant(report)
    assert [Path(f.path).name for f in report.files] == ["a.json", "b.jsonl"]
    assert counts(report.file("sub/b.jsonl")) == {"rows_read": 2, "rows_kept": 1, "skipped": {"duplicate": 1}}
    assert len(dataset) == 7


def test_broken_json_array_raises_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "output": }\n]\n', encoding="utf-8"
    )
    with pytest.raises(KitError) as info:
        load_alpaca(path)
    assert str(path) in str(info.value) and "line 3" in str(info.value)


def test_file_with_no_valid_json_line_raises(tmp_path: Path) -> None:
    path = tmp_path / "notjson.jsonl"
    path.write_text("instruction,input,output\na,b,c\n", encoding="utf-8")
    with pytest.raises(KitError, match="no line is valid JSON"):
        load_alpaca(path)


def test_lfs_pointer_and_gbk_json(tmp_path: Path) -> None:
    pointer = tmp_path / "lfs.jsonl"
    pointer.write_text(LFS_POINTER, encoding="utf-8")
    with pytest.raises(KitError, match="git lfs pull"):
        load_alpaca(pointer)
    gbk = tmp_path / "gbk.jsonl"
    gbk.write_bytes(json.dumps({"instruction": "翻译", "output": "飯後"}, ensure_ascii=False).encode("gbk"))
    dataset, report = load_alpaca(gbk)
    assert_invariant(report)
    assert report.files[0].encoding == "gbk" and dataset[0]["output"] == "飯後"


def test_line_separator_inside_a_jsonl_string_is_not_a_line_break(tmp_path: Path) -> None:
    path = tmp_path / "u2028.jsonl"
    path.write_text(
        json.dumps({"instruction": "a\u2028b", "output": "c"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    dataset, report = load_alpaca(path)
    assert_invariant(report)
    assert dataset[0]["instruction"] == "a\u2028b"


def test_system_and_history_are_kept_and_become_turns(tmp_path: Path) -> None:
    from kit.formatting.prompts import to_messages

    rows = [
        {
            "instruction": "And 3+3?",
            "output": "6",
            "system": " Be terse. ",
            "history": [["1+1?", "2"], ["2+2?", "4"]],
        },
        {"instruction": "Hi", "input": "", "output": "Hello"},  # no system/history: "" and []
        {"instruction": "x", "output": "y", "history": [["only one side"]]},  # bad_field_type
        {"instruction": "x", "output": "y", "history": [["q", "  "]]},  # empty_turn
        {"instruction": "x", "output": "y", "system": ["not", "text"]},  # bad_field_type
    ]
    dataset, report = load_alpaca(write_jsonl(tmp_path / "h.jsonl", rows))
    assert_invariant(report)
    assert counts(report.files[0]) == {
        "rows_read": 5,
        "rows_kept": 2,
        "skipped": {"bad_field_type": 2, "empty_turn": 1},
    }
    assert dataset.column_names == ["instruction", "input", "output", "system", "history"]
    first, second = dataset.to_list()
    assert first["system"] == "Be terse." and first["history"] == [["1+1?", "2"], ["2+2?", "4"]]
    assert (second["system"], second["history"]) == ("", [])
    assert to_messages(first) == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ]
    assert to_messages(second, template_system="Default.")[0] == {"role": "system", "content": "Default."}
    assert report.files[0].fixed == {"history_kept": 1, "system_kept": 1}


def test_columns_mapping_and_zero_row_error(tmp_path: Path) -> None:
    rows = [{"question": "Capital of France?", "context": "", "answer": "Paris"}]
    path = write_jsonl(tmp_path / "qa.jsonl", rows)
    with pytest.raises(KitError) as info:
        load_alpaca(path)
    message = str(info.value)
    assert str(path) in message and "kept 0 of 1 rows (skipped: missing_field=1)" in message
    assert (
        "It wants instruction and output" in message
        and "columns found: ['question', 'context', 'answer']" in message
    )
    # The suggested fix keeps every column: context becomes the input (issue 26: never silently dropped).
    assert "columns={'instruction': 'question', 'output': 'answer', 'input': 'context'}" in message
    dataset, _ = load_alpaca(
        path, columns={"instruction": "question", "input": "context", "output": "answer"}
    )
    assert dataset.to_list() == [{"instruction": "Capital of France?", "input": "", "output": "Paris"}]
