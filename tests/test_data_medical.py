"""The medical CSV loader: codecs, CSV quoting, department folders, placeholders, duplicates, errors."""

from __future__ import annotations

import ast
import codecs
import inspect
from pathlib import Path

import pytest
from data_fixtures import (
    IM_EXPECTED,
    LFS_POINTER,
    PEDIATRIC_EXPECTED,
    SURGICAL_EXPECTED,
    assert_invariant,
    counts,
    gbk_deep_file,
    medical_tree,
    utf8_mojibake_file,
    write_csv,
)

from kit.data import load_medical
from kit.data.files import CODECS
from kit.errors import KitError
from kit.formatting.prompts import MEDICAL_INSTRUCTION


def test_tree_counts_codecs_and_records(tmp_path: Path) -> None:
    dataset, report = load_medical(medical_tree(tmp_path / "medical"))
    assert_invariant(report)
    assert counts(report.file("IM_内科/im.csv")) == IM_EXPECTED
    assert counts(report.file("Surgical_外科/surgical.csv")) == SURGICAL_EXPECTED
    assert counts(report.file("Pediatric_儿科/ped.csv")) == PEDIATRIC_EXPECTED
    assert report.file("IM_内科/im.csv").encoding == "gbk"
    assert report.file("Surgical_外科/surgical.csv").encoding == "utf-8-sig"
    assert report.file("Pediatric_儿科/ped.csv").encoding == "utf-8"
    assert report.totals == {
        "rows_read": 13,
        "rows_kept": 8,
        "skipped": {"duplicate": 2, "empty_answer": 2, "placeholder_question": 1},
    }
    assert dataset.column_names == ["instruction", "input", "output", "department", "sub_department", "title"]
    rows = dataset.to_list()
    assert {r["instruction"] for r in rows} == {MEDICAL_INSTRUCTION}
    by_question = {r["input"]: r for r in rows}
    assert by_question["血压高怎么办？"]["output"] == "少吃盐,多运动,按时复查。"  # quoted commas
    assert (
        by_question["胃痛怎么办？"]["output"] == "第一，规律饮食。\n第二，少喝酒。"
    )  # embedded newline kept
    assert '他说"咳嗽已经两周了' in by_question  # stray quote mid-field
    heart = by_question["心慌 怎么办？"]  # U+3000 stripped at the edges, the run of spaces collapsed
    assert (heart["title"], heart["output"]) == ("心慌", "注意休息。")
    assert by_question["飯後胃脹怎麼辦？"]["output"] == "少食多餐〝注意〞。"  # outside GB2312, decoded right
    # Folder → department; the CSV's own department column → sub_department.
    assert by_question["血压高怎么办？"]["department"] == "内科"
    assert by_question["血压高怎么办？"]["sub_department"] == "心血管科"
    assert by_question["骨折后多久能走路？"]["department"] == "外科"
    assert by_question["宝宝发烧38度怎么办？"] == {
        "instruction": MEDICAL_INSTRUCTION,
        "input": "宝宝发烧38度怎么办？",
        "output": "多喝水，观察精神状态。",
        "department": "儿科",
        "sub_department": "",
        "title": "",
    }
    quality = report.quality()
    assert quality["balance"]["department"] == {"内科": 5, "外科": 2, "儿科": 1}
    assert quality["duplicates"] == {"skipped": 2, "remaining": 0}


def test_departments_mapping_and_folder_without_underscore(tmp_path: Path) -> None:
    root = medical_tree(tmp_path / "medical")
    write_csv(root / "Dermatology" / "d.csv", [("皮肤科", "湿疹", "湿疹怎么护理？", "保持皮肤湿润。")])
    dataset, report = load_medical(root, departments={"IM_内科": "内科门诊"})
    assert_invariant(report)
    assert set(dataset["department"]) == {"内科门诊", "外科", "儿科", "Dermatology"}


def test_single_file_takes_department_from_its_folder(tmp_path: Path) -> None:
    medical_tree(tmp_path / "medical")
    dataset, report = load_medical(tmp_path / "medical" / "Surgical_外科" / "surgical.csv")
    assert_invariant(report)
    assert counts(report.files[0]) == {"rows_read": 3, "rows_kept": 3, "skipped": {}}  # alone: no duplicate
    assert set(dataset["department"]) == {"外科"}


def test_dedupe_off_keeps_duplicates_and_quality_counts_them(tmp_path: Path) -> None:
    _dataset, report = load_medical(medical_tree(tmp_path / "medical"), dedupe=False)
    assert_invariant(report)
    assert report.rows_kept == 10 and "duplicate" not in report.skipped
    assert report.quality()["duplicates"] == {"skipped": 0, "remaining": 2}


def test_five_percent_duplicates_counted_exactly(tmp_path: Path) -> None:
    rows = [("科", f"t{i}", f"问题{i}", f"回答{i}") for i in range(190)]
    rows += [rows[i * 19] for i in range(10)]  # 10 exact repeats = 5% of 200
    write_csv(tmp_path / "A_甲" / "a.csv", rows[:100])
    write_csv(tmp_path / "B_乙" / "b.csv", rows[100:])
    _, report = load_medical(tmp_path)
    assert_invariant(report)
    assert report.totals == {"rows_read": 200, "rows_kept": 190, "skipped": {"duplicate": 10}}


def test_gbk_file_whose_first_non_gb2312_char_is_100kb_in(tmp_path: Path) -> None:
    path, n_rows, special = gbk_deep_file(tmp_path / "IM_内科" / "deep.csv")
    raw = path.read_bytes()
    raw[:65536].decode("gb2312")  # sniffing the start would say GB2312 ...
    with pytest.raises(UnicodeDecodeError) as info:
        raw.decode("gb2312")  # ... which fails only deep in the file
    assert info.value.start > 100_000
    dataset, report = load_medical(path)
    assert_invariant(report)
    assert report.files[0].encoding == "gbk"
    assert report.files[0].rows_read == n_rows == report.rows_kept
    assert dataset[n_rows - 1]["input"] == special
    assert dataset[0]["input"] == "第0个问题：头痛发热怎么办？"


def test_gb18030_only_character_is_decoded_and_recorded(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "X_其他" / "euro.csv", [("科", "费用", "挂号费多少€？", "约20€。")], encoding="gb18030"
    )
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("gbk")
    dataset, report = load_medical(path)
    assert_invariant(report)
    assert report.files[0].encoding == "gb18030"
    assert dataset[0]["input"] == "挂号费多少€？"


def test_utf8_file_that_gbk_would_turn_into_mojibake(tmp_path: Path) -> None:
    path, words = utf8_mojibake_file(tmp_path / "X_其他" / "utf8.csv")
    raw = path.read_bytes()
    as_gbk = raw.decode("gbk")  # decodes without error ...
    assert as_gbk != raw.decode("utf-8")  # ... into mojibake
    dataset, report = load_medical(path)
    assert_invariant(report)
    assert report.files[0].encoding == "utf-8"
    assert dataset[0]["input"] in words and dataset[0]["output"] in words


def test_undecodable_file_names_file_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "X_其他" / "broken.csv"
    good = "department,title,ask,answer\r\n科,标题,问题,回答\r\n".encode("gbk")
    path.parent.mkdir(parents=True)
    path.write_bytes(good + b"\xff\xfe,x,y,z\r\n")
    with pytest.raises(KitError) as info:
        load_medical(path)
    message = str(info.value)
    assert str(path) in message
    assert f"byte offset {len(good)}" in message
    assert "UTF-8" in message  # the fix: re-save as UTF-8


def test_lfs_pointer_is_an_error_with_the_fix(tmp_path: Path) -> None:
    medical_tree(tmp_path / "medical")
    pointer = tmp_path / "medical" / "IM_内科" / "im.csv"
    pointer.write_text(LFS_POINTER, encoding="utf-8")
    with pytest.raises(KitError) as info:
        load_medical(tmp_path / "medical")
    assert str(pointer) in str(info.value)
    assert "git-LFS pointer" in str(info.value) and "git lfs pull" in str(info.value)


def test_missing_answer_column_names_columns_and_aliases(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "A_甲" / "a.csv", [("q", "a")], header=("ask", "reply"))
    with pytest.raises(KitError) as info:
        load_medical(path)
    message = str(info.value)
    assert str(path) in message and "['ask', 'reply']" in message
    assert "'answer'" in message and "'回答'" in message and "'response'" in message


def test_chinese_headers_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "A_甲" / "a.csv"
    path.parent.mkdir(parents=True)
    text = "科室,标题,问题,回答\n内科,t,问一,答一\n内科,t,问二,答二,多余的字段\n内科,t,问三,答三\n"
    path.write_bytes(text.encode("gbk"))
    dataset, report = load_medical(path)
    assert_invariant(report)
    assert counts(report.files[0]) == {"rows_read": 3, "rows_kept": 2, "skipped": {"bad_row": 1}}
    assert "问二" in report.files[0].notes["first_bad_row"]
    assert dataset["input"] == ["问一", "问三"] and dataset["sub_department"] == ["内科", "内科"]


def test_empty_file_and_missing_path(tmp_path: Path) -> None:
    empty = tmp_path / "A_甲" / "empty.csv"
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")
    with pytest.raises(KitError, match="empty"):
        load_medical(empty)
    with pytest.raises(KitError, match="no such file"):
        load_medical(tmp_path / "nowhere")
    with pytest.raises(KitError, match=r"no \.csv/\.tsv/\.parquet/\.arrow/\.json/\.jsonl files"):
        load_medical(_empty_dir(tmp_path))


def _empty_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "nothing_here"
    folder.mkdir()
    return folder


def test_files_are_recorded_for_the_run_manifest(tmp_path: Path) -> None:
    from kit import runinfo

    root = medical_tree(tmp_path / "medical")
    load_medical(root)
    recorded = {entry["path"] for entry in runinfo.data_files_read()}
    assert str((root / "IM_内科" / "im.csv").resolve()) in recorded
    assert str((root / "Pediatric_儿科" / "ped.csv").resolve()) in recorded


def test_no_ansi_codec_and_no_row_loops() -> None:
    # Some public code passes encoding="ANSI": no such codec exists on Linux, so we never name it.
    with pytest.raises(LookupError):
        codecs.lookup("ANSI")
    assert CODECS == ("utf-8", "gbk", "gb18030", "big5")
    from kit.data import arrowtext, csvrows, dedupe, medical

    for module in (medical, arrowtext, dedupe, csvrows):  # the vectorised path: no row loops over frames
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in {"iterrows", "itertuples", "iter_rows", "to_pylist"}, module
                axis = [k for k in node.keywords if k.arg == "axis" and getattr(k.value, "value", None) == 1]
                assert not (node.func.attr == "apply" and axis), module


def test_header_only_file_and_everything_skipped_is_an_error(tmp_path: Path) -> None:
    # A load that keeps no row is an error naming what was read and why (it used to return 0 rows).
    write_csv(tmp_path / "A_甲" / "header.csv", [])
    write_csv(tmp_path / "A_甲" / "skipped.csv", [("科", "t", "无", "x"), ("科", "t", "问", "")])
    with pytest.raises(KitError) as info:
        load_medical(tmp_path)
    message = str(info.value)
    assert "kept 0 of 2 rows (skipped: empty_answer=1, placeholder_question=1)" in message
    assert "columns found: ['department', 'title', 'ask', 'answer']" in message
    assert "--show-skipped" in message  # the columns are right: the rows broke rules
    with pytest.raises(KitError) as info:
        load_medical(tmp_path / "A_甲" / "header.csv")
    assert "no rows (the file is empty or holds only a header)" in str(info.value)


@pytest.mark.parametrize("encoding", ["gbk", "utf-8"])
def test_multi_megabyte_file_across_read_chunks(tmp_path: Path, encoding: str) -> None:
    # Several 1 MiB read chunks: multi-byte characters and quoted newlines fall on chunk boundaries.
    rows = [
        ("科", f"标题{i}", f"第{i}个问题，头痛怎么办？", f"回答{i}：多休息,\n多喝水。" * 3)
        for i in range(40_000)
    ]
    path = write_csv(tmp_path / "A_甲" / "big.csv", rows, encoding=encoding)
    assert path.stat().st_size > 3 << 20
    dataset, report = load_medical(path)
    assert_invariant(report)
    assert report.files[0].encoding == encoding and report.rows_kept == 40_000
    assert dataset[39_999]["output"] == "回答39999：多休息,\n多喝水。" * 3
    assert dataset["input"][12_345] == "第12345个问题，头痛怎么办？"


def test_placeholder_question_takes_a_real_title(tmp_path: Path) -> None:
    rows = [
        (
            "内科",
            "高血压患者能吃党参吗？",
            "无",
            "可以少量食用，需遵医嘱。",
        ),  # kept: the title is the question
        ("内科", "头晕怎么办", "", "多休息。"),  # kept: empty question, real title
        ("内科", "无题", "无", "请补充问题。"),  # placeholder_question: the title says nothing either
        ("内科", "无", "无", "x"),  # placeholder_question
        ("内科", "", "无", "x"),  # placeholder_question: no title
        (
            "内科",
            "高血压患者能吃党参吗？",
            "无",
            "可以少量食用，需遵医嘱。",
        ),  # duplicate of row 1 after the swap
    ]
    path = write_csv(tmp_path / "IM_内科" / "t.csv", rows)
    dataset, report = load_medical(path)
    assert_invariant(report)
    assert counts(report.files[0]) == {
        "rows_read": 6,
        "rows_kept": 2,
        "skipped": {"duplicate": 1, "placeholder_question": 3},
    }
    assert report.files[0].fixed == {"title_as_question": 3}
    assert dataset["input"] == ["高血压患者能吃党参吗？", "头晕怎么办"]
    shown = report.skipped_rows(2)
    assert [r["where"] for r in shown["placeholder_question"]] == ["data row 3", "data row 4"]
    assert shown["duplicate"] == [
        {"file": str(path), "where": "data row 6", "row": "高血压患者能吃党参吗？ | 可以少量食用，需遵医嘱。"}
    ]


def test_csv_column_mapping_and_its_hint(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "A_甲" / "a.csv", [("胸闷怎么办？", "及时就医。")], header=("patient", "doctor")
    )
    with pytest.raises(KitError, match=r"columns found: \['patient', 'doctor'\].*pass columns="):
        load_medical(path)
    dataset, report = load_medical(path, columns={"question": "patient", "answer": "doctor"})
    assert_invariant(report)
    assert dataset[0]["input"] == "胸闷怎么办？" and dataset[0]["output"] == "及时就医。"
    with pytest.raises(KitError, match="columns maps answer to 'reply', which is not a column"):
        load_medical(path, columns="question=patient,answer=reply")


def test_source_damage_is_counted_in_quality(tmp_path: Path) -> None:
    rows = [
        ("科", "t", "Ã©tÃ© 头痛？", "休息。"),
        ("科", "t", "发烧？", "多喝水\ufffd。"),
        ("科", "t", "咳嗽？", "就医。"),
    ]
    _, report = load_medical(write_csv(tmp_path / "A_甲" / "a.csv", rows, encoding="utf-8"))
    quality = report.quality()
    assert (quality["mojibake"], quality["replacement_chars"]) == (1, 1)
