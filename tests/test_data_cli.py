"""``kit data report|convert`` through kit.cli.main: JSON output, clean UTF-8 JSONL, errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import (
    ALPACA_LINES,
    GSM8K_LINES,
    LFS_POINTER,
    PAIRS_LINES,
    medical_tree,
    tiny_tokenizer_dir,
    write_jsonl,
)

from kit.cli import main


def test_report_json_is_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = medical_tree(tmp_path / "medical")
    assert main(["data", "report", str(root), "--kind", "medical", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # the whole stdout is exactly one JSON object
    assert {"files", "totals"} <= set(data)
    assert [set(f) >= {"path", "encoding", "rows_read", "rows_kept", "skipped"} for f in data["files"]] == [
        True
    ] * 3
    assert data["totals"] == {
        "rows_read": 13,
        "rows_kept": 8,
        "skipped": {"duplicate": 2, "empty_answer": 2, "placeholder_question": 1},
    }
    assert "内科" in out  # not \\u-escaped
    assert all(set(f) == {"path", "encoding", "rows_read", "rows_kept", "skipped"} for f in data["files"])
    for part in [*data["files"], data["totals"]]:
        assert part["rows_read"] == part["rows_kept"] + sum(part["skipped"].values())


def test_report_json_with_tokenizer_and_details(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", ALPACA_LINES)
    argv = [
        "data",
        "report",
        str(path),
        "--kind",
        "alpaca",
        "--json",
        "--tokenizer",
        str(tiny_tokenizer_dir()),
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["totals"]) == {"rows_read", "rows_kept", "skipped"}
    assert data["totals"]["rows_read"] == 14 and data["totals"]["rows_kept"] == 6
    assert data["fixed"] == {"prefix_stripped": 2, "whitespace_stripped": 2}
    assert data["details"][0]["notes"] == {"first_invalid_json_line": 9, "first_non_object_row": 8}
    assert set(data["quality"]["tokens"]) == {"instruction", "input", "output"}
    assert main([*argv[:-1], str(tmp_path / "no-tokenizer-here")]) == 2
    assert "no-tokenizer-here: no such folder" in capsys.readouterr().err


def test_report_text_for_each_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gsm = write_jsonl(tmp_path / "g.jsonl", GSM8K_LINES)
    pairs = write_jsonl(tmp_path / "p.jsonl", PAIRS_LINES)
    alpaca = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "a", "output": "b"}])
    for path, kind in ((gsm, "gsm8k"), (pairs, "preference"), (alpaca, "alpaca")):
        assert main(["data", "report", str(path), "--kind", kind]) == 0
        out = capsys.readouterr().out
        assert f"{kind} data from" in out and "quality:" in out


def test_convert_writes_utf8_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = medical_tree(tmp_path / "medical")
    out_file = tmp_path / "out" / "medical.jsonl"
    assert main(["data", "convert", str(root), "--kind", "medical", "-o", str(out_file), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["totals"]["rows_kept"] == 8
    assert "wrote 8 records" in captured.err
    text = out_file.read_text(encoding="utf-8")
    assert "血压高怎么办？" in text and "\\u" not in text
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 8 and rows[1]["output"] == "第一，规律饮食。\n第二，少喝酒。"


def test_convert_gsm8k_keeps_message_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "g.jsonl"
    assert (
        main(
            [
                "data",
                "convert",
                str(write_jsonl(tmp_path / "in.jsonl", GSM8K_LINES)),
                "--kind",
                "gsm8k",
                "-o",
                str(out_file),
            ]
        )
        == 0
    )
    assert "wrote 7 records" in capsys.readouterr().out
    first = json.loads(out_file.read_text(encoding="utf-8").splitlines()[0])
    assert first["prompt"][1]["role"] == "user" and first["answer"] == "72"


def test_errors_exit_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pointer = tmp_path / "IM_内科" / "a.csv"
    pointer.parent.mkdir()
    pointer.write_text(LFS_POINTER, encoding="utf-8")
    assert main(["data", "report", str(pointer), "--kind", "medical", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "git-LFS pointer" in captured.err and "Traceback" not in captured.err
    assert main(["data", "report", str(tmp_path / "missing"), "--kind", "alpaca"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_chat_kind_show_skipped_and_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"conversations": [{"from": "human", "value": "Hi again"}]},
        {"conversations": [{"from": "gpt", "value": "Me first"}, {"from": "human", "value": "?"}]},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    assert main(["data", "report", str(path), "--kind", "chat", "--show-skipped", "1"]) == 0
    out = capsys.readouterr().out
    assert "chat data from" in out and "kept 1 of 3 rows" in out
    assert "skipped rows (up to 1 per reason):" in out
    assert f"ends_on_user (1 in total):\n    {path}, line 2: " in out
    assert f"bad_role_order (1 in total):\n    {path}, line 3: " in out
    renamed = write_jsonl(tmp_path / "r.jsonl", [{"q": "What is 2+2?", "sol": "4\n#### 4"}])
    assert main(["data", "report", str(renamed), "--kind", "gsm8k"]) == 2
    err = capsys.readouterr().err
    assert "kept 0 of 1 rows" in err and "Traceback" not in err
    assert (
        main(
            [
                "data",
                "report",
                str(renamed),
                "--kind",
                "gsm8k",
                "--columns",
                "question=q,answer=sol",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["totals"]["rows_kept"] == 1


def test_zero_rows_exit_2_for_every_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    for kind in ("alpaca", "chat", "gsm8k", "preference", "medical"):
        path = empty if kind != "medical" else write_csv_header_only(tmp_path / "IM_内科" / "h.csv")
        assert main(["data", "report", str(path), "--kind", kind]) == 2, kind
        err = capsys.readouterr().err
        assert "no rows" in err and "columns found" in err, (kind, err)
    assert main(["data", "report"]) == 2
    assert "give a data path" in capsys.readouterr().err


def write_csv_header_only(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("department,title,ask,answer\n", encoding="utf-8")
    return path
