"""Feed the CLI hostile files and faults of every category from issues 15 and 26; check each outcome.

    .venv/bin/python benchmarks/hostile_sweep.py [--keep DIR] [--only SUBSTRING] [--category NAME ...]

Every case runs ``python -m kit ...`` (or ``python -m kit.bootstrap``) in a fresh subprocess with a timeout and
must end with: no traceback on stderr; no hang (the timeout); exit 0, 1 or 2; on a non-zero exit exactly one
``error:`` line on stderr; on exit 0 with ``--json`` the invariant ``rows_read == rows_kept + skipped`` for every
file and the totals, and ``rows_read`` equal to the number of records the case wrote (no silent loss). Cases
marked ``error`` must fail, cases marked ``ok`` must succeed. Prints one line per case and the totals: cases
tried, clear errors, cases that passed with counted skips (and how many rows were skipped), and (issue 26) the
tracebacks, silent losses (rows read or totals other than the case's exact expectation) and secrets written (planted
values found in the output or in any file a batch wrote).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120
GOOD = {"instruction": "说一句问候语", "input": "", "output": "你好"}
GOOD2 = {"instruction": "Say hello", "input": "", "output": "Hello"}
MATH = {"question": "What is 2 + 3?", "answer": "2 + 3 = 5\n#### 5"}
PAIR = {"prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."}


@dataclass
class Case:
    """One hostile input: the CLI arguments, what must happen, and how many records the input holds."""

    name: str
    category: str
    argv: list[str]
    expect: str = "any"  # ok | error | any
    rows: int | None = None  # records in the input, when it is read (exit 0 with --json)
    module: str = "kit"
    report: bool = False  # a check command: exit 1 with its findings on stdout, stderr empty
    totals: dict | None = None  # the exact totals expected (rows read, kept, skipped by reason)
    contains: str | None = None  # text the error line (or, on success, stdout) must contain
    env: dict[str, str] | None = None  # extra environment (planted secrets)
    secrets: tuple[str, ...] = ()  # values that must appear in no output and no file under scan
    scan: Path | None = None  # the folder whose files are searched for the secrets


def jsonl(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def good_lines(n: int = 2) -> list[str]:
    return [json.dumps({**GOOD, "instruction": f"问候语 {i}"}, ensure_ascii=False) for i in range(n)]


def build(tmp: Path) -> list[Case]:
    cases: list[Case] = []

    def report(name: str, category: str, path: Path, kind: str, *, expect: str = "any", rows: int | None = None,
               extra: tuple[str, ...] = ()) -> None:
        cases.append(Case(name, category, ["data", "report", str(path), "--kind", kind, "--json", *extra], expect, rows))

    j = tmp / "json"
    bad_values = {
        "int_5000_digits": '{"instruction": "x", "output": ' + "7" * 5000 + "}",
        "int_100k_digits": '{"instruction": "x", "output": ' + "7" * 100_000 + "}",
        "negative_huge_int": '{"instruction": "x", "output": -' + "7" * 5000 + "}",
        "nested_100k": '{"instruction": "x", "output": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "nested_objects_50k": '{"instruction": "x", "output": ' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "}",
        "lone_high_surrogate": '{"instruction": "x\\ud800", "output": "y"}',
        "lone_low_surrogate": '{"instruction": "x", "output": "\\udfff"}',
        "surrogate_in_key": '{"\\ud83d": 1, "instruction": "x", "output": "y"}',
        "valid_pair_surrogate": None,  # a correct pair is kept
        "truncated_line": '{"instruction": "x", "output": ',
        "nan_literal": '{"instruction": "x", "output": NaN}',
        "nul_in_string": '{"instruction": "x\\u0000y", "output": "z"}',
        "bare_number": "12345",
        "huge_string_8mb": json.dumps({"instruction": "x", "output": "y" * (8 << 20)}),
    }
    for name, line in bad_values.items():
        if line is None:
            line = '{"instruction": "emoji \\ud83d\\ude00", "output": "ok"}'
        report(f"jsonl_{name}", "json", jsonl(j / f"{name}.jsonl", [*good_lines(), line, json.dumps(GOOD2)]),
               "alpaca", expect="ok", rows=4)
    for kind, row in (("gsm8k", MATH), ("preference", PAIR)):
        lines = [json.dumps(row), bad_values["int_5000_digits"], bad_values["nested_100k"],
                 bad_values["lone_high_surrogate"], json.dumps({**row, **{k: v + " 2" for k, v in row.items()}})]
        report(f"{kind}_bad_values", "json", jsonl(j / f"{kind}.jsonl", lines), kind, expect="ok", rows=5)
    array = j / "array_bad_values.json"
    array.write_text("[" + ",\n".join([*good_lines(), '{"instruction": "x", "output": ' + "9" * 5000 + "}",
                                       '{"instruction": "\\udfff", "output": "y"}']) + "]", encoding="utf-8")
    report("json_array_bigint_surrogate", "json", array, "alpaca", expect="ok", rows=4)
    deep = j / "array_deep.json"
    deep.write_text("[" + good_lines(1)[0] + "," + "[" * 100_000 + "]" * 100_000 + "]", encoding="utf-8")
    report("json_array_deep", "json", deep, "alpaca", expect="error")
    broken = j / "array_broken.json"
    broken.write_text("[" + good_lines(1)[0] + ",\n{", encoding="utf-8")
    report("json_array_syntax", "json", broken, "alpaca", expect="error")
    report("json_empty", "json", jsonl(j / "empty.jsonl", []), "alpaca", expect="error")
    (j / "blank.jsonl").write_text("\n\n   \n", encoding="utf-8")
    report("json_blank_lines", "json", j / "blank.jsonl", "alpaca", expect="error")
    report("json_all_invalid", "json", jsonl(j / "invalid.jsonl", ["{", "[1,", "nope"]), "alpaca", expect="error")
    (j / "bom_crlf.jsonl").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(good_lines(3)).encode() + b"\r\n")
    report("jsonl_bom_crlf", "json", j / "bom_crlf.jsonl", "alpaca", expect="ok", rows=3)
    (j / "binary.jsonl").write_bytes(os.urandom(4096))
    report("jsonl_random_bytes", "json", j / "binary.jsonl", "alpaca", expect="error")
    (j / "utf16.jsonl").write_bytes("\n".join(good_lines()).encode("utf-16"))
    report("jsonl_utf16", "json", j / "utf16.jsonl", "alpaca", expect="error")
    (j / "lfs.jsonl").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n")
    report("jsonl_lfs_pointer", "json", j / "lfs.jsonl", "alpaca", expect="error")

    c = tmp / "csv"
    c.mkdir()

    def csv_case(name: str, text: str | bytes, *, expect: str = "any", rows: int | None = None,
                 codec: str = "gbk") -> None:
        path = c / f"{name}.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode(codec))
        report(f"csv_{name}", "csv", path, "medical", expect=expect, rows=rows, extra=("--no-dedupe",))

    csv_case("unclosed_middle", 'ask,answer\n问一,答一\n问二,"未闭合\n问三,答三\n问四,答四\n', expect="ok", rows=4)
    csv_case("unclosed_last", 'ask,answer\n问一,答一\n问二,答二\n问三,"未闭合\n', expect="ok", rows=3)
    csv_case("unclosed_closes_later", 'ask,answer\n问一,"答一\n问二,答二\n问三,"答三"\n问四,答四\n', expect="ok", rows=4)
    csv_case("unclosed_swallows", 'ask,answer\n问一,答一\n"问二,答二\n问三,答三\n', expect="ok", rows=3)
    csv_case("two_unclosed", 'ask,answer\n问一,"答一\n问二,答二\n问三,"答三\n问四,答四\n问五,答五\n', expect="ok", rows=5)
    csv_case("stray_quote_unquoted", 'ask,answer\n问一,他说"好\n问二,答二\n', expect="ok", rows=2)
    csv_case("quote_after_close", 'ask,answer\n问一,"答"一\n问二,答二\n', expect="ok", rows=2)
    csv_case("wrong_field_count", 'ask,answer\n问一,答一,多\n问二,答二\n问三\n', expect="ok", rows=3)
    csv_case("field_5mb", 'ask,answer\n问一,"' + "答" * ((5 << 20) // 3) + '"\n问二,答二\n', expect="ok", rows=2)
    csv_case("field_5mb_unquoted", "ask,answer\n问一," + "a" * (5 << 20) + "\n问二,答二\n", expect="ok", rows=2)
    rows = ["ask,answer", *(f"问{i},答{i}" + (",多" if i % 3 == 0 else "") for i in range(30_000))]
    rows.insert(15_000, '问x,"' + "答" * (2 << 20) + '"')
    csv_case("bad_rows_and_huge_field", "\n".join(rows) + "\n", expect="ok", rows=30_001)
    generic = c / "generic_bad_rows_and_huge_field.csv"
    generic.write_bytes(("\n".join(["instruction,output", *rows[1:]]) + "\n").encode("gbk"))
    report("csv_generic_bad_rows_and_huge_field", "csv", generic, "alpaca", expect="ok", rows=30_001)
    generic_quote = c / "generic_unclosed.csv"
    generic_quote.write_bytes('instruction,output\n问一,答一\n问二,"未闭合\n问三,答三\n问四,答四\n'.encode("gbk"))
    report("csv_generic_unclosed", "csv", generic_quote, "alpaca", expect="ok", rows=4)
    csv_case("header_only", "department,title,ask,answer\n", expect="error")
    csv_case("empty", b"", expect="error")
    csv_case("no_question_column", "foo,bar\n1,2\n", expect="error")
    csv_case("cr_only_newlines", "ask,answer\r问一,答一\r问二,答二\r", expect="ok", rows=2)
    csv_case("nul_bytes", b"ask,answer\n\xce\xca\x00,\xb4\xf0\n", expect="any")
    csv_case("big5", "ask,answer\n醫生您好，我最近頭痛得厲害，晚上睡不著覺？,建議您到醫院神經內科就診，先做檢查。\n",
             expect="ok", rows=1, codec="big5")
    csv_case("gb18030_private_use", b"ask,answer\n" + b"\xfe\xfe" * 50 + b",x\n", expect="error")
    csv_case("shift_jis", "ask,answer\n頭が痛いです。どうすればいいですか？,病院で診てもらってください。\n", codec="shift_jis")
    csv_case("latin1", "ask,answer\ncafé crème,déjà vu à côté\n", codec="latin-1")
    csv_case("utf8_bom", "\ufeffask,answer\n问一,答一\n", expect="ok", rows=1, codec="utf-8")
    csv_case("lfs_pointer", "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", expect="error")
    csv_case("many_broken_quotes", "ask,answer\n" + "".join(f'问{i},"答\n' for i in range(1500)), expect="error")
    csv_case("some_broken_quotes", "ask,answer\n" + "".join(f'问{i},"答\n' if i % 10 == 0 else f"问{i},答\n"
                                                           for i in range(500)), expect="ok", rows=500)
    csv_case("random_bytes", os.urandom(8192), expect="error")

    p = tmp / "paths"
    p.mkdir()
    (p / "loop.jsonl").symlink_to(p / "loop.jsonl")
    report("symlink_loop_file", "paths", p / "loop.jsonl", "alpaca", expect="error")
    (p / "dangling.csv").symlink_to(p / "nowhere.csv")
    report("symlink_dangling", "paths", p / "dangling.csv", "medical", expect="error")
    folder = p / "folder" / "IM_内科"
    folder.mkdir(parents=True)
    (folder / "good.csv").write_bytes("ask,answer\n问一,答一\n".encode("gbk"))
    (folder / "loop.csv").symlink_to(folder / "loop.csv")
    (p / "folder" / "self").symlink_to(p / "folder")
    report("symlink_loop_in_folder", "paths", p / "folder", "medical", expect="error")
    jfolder = p / "jfolder"
    jsonl(jfolder / "good.jsonl", good_lines())
    (jfolder / "loop.jsonl").symlink_to(jfolder / "loop.jsonl")
    report("symlink_loop_in_json_folder", "paths", jfolder, "alpaca", expect="any")
    os.mkfifo(p / "fifo.jsonl")
    report("fifo", "paths", p / "fifo.jsonl", "alpaca", expect="error")
    (p / "empty_dir").mkdir()
    report("empty_folder", "paths", p / "empty_dir", "alpaca", expect="error")
    report("missing", "paths", p / "missing.jsonl", "alpaca", expect="error")
    source = jsonl(p / "in.jsonl", good_lines())
    convert = ["data", "convert", str(source), "--kind", "alpaca", "-o"]
    cases.append(Case("convert_o_folder", "paths", [*convert, str(p)], "error"))
    cases.append(Case("convert_o_under_file", "paths", [*convert, str(source / "x" / "out.jsonl")], "error"))
    cases.append(Case("convert_o_dev_full", "paths", [*convert, "/dev/full"], "error"))
    cases.append(Case("convert_o_ok", "paths", [*convert, str(p / "out" / "clean.jsonl")], "ok"))
    cases.append(Case("tokenizer_missing", "paths", ["data", "report", str(source), "--kind", "alpaca",
                                                     "--tokenizer", str(p / "no-tokenizer")], "error"))
    cases.append(Case("tokenizer_not_a_tokenizer", "paths", ["data", "report", str(source), "--kind", "alpaca",
                                                             "--tokenizer", str(p / "empty_dir")], "error"))

    b = tmp / "batch"
    (b / "nb").mkdir(parents=True)
    sys.path.insert(0, str(ROOT / "tests"))
    from test_batch_helpers import write_notebook

    write_notebook(b / "nb" / "dummy.ipynb")

    def plan(name: str, content: str | bytes, *extra: str, expect: str = "error") -> None:
        path = b / f"{name}.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        cases.append(Case(f"plan_{name}", "batch", ["batch", str(path), "--dry-run", *extra], expect))

    ok_plan = "runs:\n  - notebook: nb/dummy.ipynb\n"
    plan("gbk", "runs:\n  - notebook: nb/dummy.ipynb\n    name: 中文\n".encode("gbk"))
    plan("utf16", ok_plan.encode("utf-16"))
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 14)]
    plan("alias_bomb", ok_plan + "    parameters:\n      upstream:\n" + "".join(f"        {x}\n" for x in bomb))
    merge = ["m0: &m0 {a: 1, b: 2, c: 3}"] + [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: {i}}}" for i in range(1, 30)]
    plan("merge_bomb", "x:\n" + "".join(f"  {x}\n" for x in merge) + ok_plan)
    plan("recursive_alias", ok_plan + "    parameters: &p {upstream: *p}\n")
    plan("deep_nesting", "runs: " + "[" * 50_000 + "]" * 50_000 + "\n")
    plan("python_tag", ok_plan + "    parameters: {upstream: !!python/object/apply:os.system [echo hi]}\n")
    plan("not_a_mapping", "- just\n- a list\n")
    plan("empty", "")
    plan("ok", ok_plan, expect="ok")
    plan("small_anchor", "runs:\n  - notebook: nb/dummy.ipynb\n    name: a\n    parameters: &p {steps: 2}\n"
         "  - notebook: nb/dummy.ipynb\n    name: b\n    parameters: *p\n", expect="ok")
    blocker = b / "blocker"
    blocker.write_text("x")
    plan("out_is_file", ok_plan, "--out", str(blocker))
    plan("out_under_file", ok_plan, "--out", str(blocker / "runs"))
    cases.append(Case("plan_is_folder", "batch", ["batch", str(b), "--dry-run"], "error"))
    cases.append(Case("plan_missing", "batch", ["batch", str(b / "missing.yaml"), "--dry-run"], "error"))
    cases.append(Case("jobs_zero", "batch", ["batch", str(b / "ok.yaml"), "--jobs", "0"], "error"))

    cases.append(Case("tiny_model_under_file", "commands", ["tiny-model", str(blocker / "tiny"), "--pretrain-steps", "0"],
                      "error"))
    cases.append(Case("notebooks_check_missing", "commands", ["notebooks", "check", str(b / "none.ipynb")], "error",
                      report=True))
    cases.append(Case("unknown_command", "commands", ["no-such-command"], "error"))
    cases.append(Case("bootstrap_venv_under_file", "commands", ["--venv", str(blocker / "venv"), "install"], "error",
                      module="kit.bootstrap"))
    cases += round3(tmp, b)
    return cases


def round3(tmp: Path, b: Path) -> list[Case]:
    """Issue 26: missing values, dropped columns, final answers, skipped files, secrets, plans, messages."""
    from test_batch_helpers import PARAMETERS, write_notebook

    cases: list[Case] = []
    r = tmp / "round3"
    r.mkdir()

    def data(name: str, category: str, lines: list[str] | str | bytes, kind: str, totals: dict | None = None, *,
             suffix: str = ".jsonl", expect: str = "ok", extra: tuple[str, ...] = (), contains: str | None = None) -> None:
        path = r / f"{name}{suffix}"
        if isinstance(lines, list):
            lines = "\n".join(lines) + "\n"
        path.write_bytes(lines if isinstance(lines, bytes) else lines.encode("utf-8"))
        rows = totals["rows_read"] if totals else None
        cases.append(Case(f"{category}_{name}", category, ["data", "report", str(path), "--kind", kind, "--json", *extra],
                          expect, rows, totals=totals, contains=contains))

    def t(read: int, kept: int, **skipped: int) -> dict:
        return {"rows_read": read, "rows_kept": kept, "skipped": skipped}

    # Missing cells as pandas dumps them: never the text "nan".
    data("alpaca_nan_cells", "missing", ['{"instruction": "a", "input": NaN, "output": "x"}',
                                         '{"instruction": "b", "output": NaN}', '{"instruction": "c", "output": "nan"}',
                                         '{"instruction": NaN, "output": "y"}', '{"instruction": "d", "output": "<NA>"}',
                                         '{"instruction": "e", "input": "inf", "output": "z"}'], "alpaca", t(6, 2, missing_value=4))
    data("alpaca_csv_nan", "missing", "instruction,input,output\na,nan,x\nb,,NaN\nc,,y\n", "alpaca", t(3, 2, missing_value=1),
         suffix=".csv")
    data("chat_nan_content", "missing", ['{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": NaN}]}',
                                         '{"conversations": [{"from": "human", "value": "nan"}, {"from": "gpt", "value": "ok"}]}',
                                         '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}'],
         "chat", t(3, 1, missing_value=2))
    data("preference_nan", "missing", ['{"prompt": "q", "chosen": NaN, "rejected": "b"}',
                                       '{"prompt": "q", "chosen": "a", "rejected": "-Infinity"}',
                                       '{"prompt": "q", "chosen": "a", "rejected": "b"}'], "preference", t(3, 1, missing_value=2))
    data("gsm8k_nan", "missing", ['{"question": "q", "answer": NaN}', '{"question": "nan", "answer": "#### 3"}',
                                  '{"question": "q2", "answer": "#### 3"}'], "gsm8k", t(3, 1, missing_value=2))
    data("medical_nan", "missing", "ask,answer\n头痛怎么办,nan\nNaN,答\n胃痛怎么办,多喝水\n".encode("gbk"), "medical",
         t(3, 1, missing_value=2), suffix=".csv")
    # Columns dropped without a word.
    dolly = [json.dumps({"instruction": f"i{i}", "context": f"c{i}", "response": f"r{i}"}) for i in range(3)]
    data("dolly_suggestion", "columns", dolly, "alpaca", expect="error", contains="--columns output=response,input=context")
    data("dolly_mapped", "columns", dolly, "alpaca", t(3, 3), extra=("--columns", "output=response,input=context"))
    data("dolly_half_mapped", "columns", dolly, "alpaca", t(3, 3), extra=("--columns", "output=response"),
         contains='"unread_columns": ["context"]')
    data("csv_duplicate_header", "columns", "instruction,output,output\na,b,c\n", "alpaca", expect="error",
         suffix=".csv", contains="names column 'output' twice")
    data("medical_duplicate_header", "columns", "ask,answer,answer\na,b,c\n", "medical", expect="error", suffix=".csv",
         contains="names column 'answer' twice")
    data("medical_question_title", "columns", "department,title,ask,answer\n内科,头痛怎么办,无,多休息\n", "medical",
         t(1, 1), suffix=".csv", extra=("--columns", "question=title"))
    # Other silent losses.
    user, bot = {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}
    data("weight_zero_turns", "loss", [json.dumps({"messages": [user, {**bot, "weight": 0}, user, bot]}),
                                       json.dumps({"messages": [user, bot, user, {**bot, "weight": 0}]}),
                                       json.dumps({"messages": [user, {**bot, "weight": 0}]}),
                                       json.dumps({"messages": [{**user, "content": "x"}, bot]})],
         "chat", t(4, 2, weight_zero_turn=2))
    data("two_objects_one_line", "loss", [json.dumps(GOOD, ensure_ascii=False) + json.dumps(GOOD2),
                                          json.dumps({**GOOD2, "output": "Hi"}) + " , " + json.dumps({**GOOD2, "output": "Hey"})],
         "alpaca", t(4, 4))
    data("three_objects_one_line", "loss", [json.dumps(GOOD2) + json.dumps({**GOOD2, "output": "a"}) + json.dumps({**GOOD2, "output": "b"})],
         "alpaca", t(3, 3))
    data("object_and_garbage", "loss", [json.dumps(GOOD2) + " garbage", json.dumps(GOOD, ensure_ascii=False)], "alpaca",
         t(2, 1, invalid_json=1))
    # Final answers: every form read exactly, or skipped under a named reason.
    forms = ["3/4", "1 1/2", "1,00,000", "1 000", "3,5", "1e6", "- 5", "１，２３４", "٤٢", "**18**", "$1,080.",
             "2.5E-3", "\\frac{1}{3}", "12 eggs"]
    data("gsm8k_answer_forms", "answers", [json.dumps({"question": f"q{i}", "answer": f"work\n#### {f}"}, ensure_ascii=False)
                                           for i, f in enumerate(forms)], "gsm8k", t(len(forms), len(forms)))
    data("gsm8k_unreadable_forms", "answers", [json.dumps({"question": f"q{i}", "answer": f"#### {f}"}) for i, f in
                                               enumerate(["3 apples and 4 pears", "2/0", "1,2345", "many"])],
         "gsm8k", expect="error", contains="kept 0 of 4 rows (skipped: ambiguous_answer=2, non_numeric_answer=1, "
         "unreadable_answer=1)")
    data("gsm8k_markdown_after", "answers", [json.dumps({"question": "q", "answer": "2+2\n#### 4\n\n#### Explanation\nWe add 3."}),
                                             json.dumps({"question": "r", "answer": "#### 18\n##### Details 5\n---"})],
         "gsm8k", t(2, 2), contains="")
    # Files a folder holds next to the data.
    med = r / "departments"
    for folder, name, text in (("IM_内科", "a.csv", "ask,answer\n头痛怎么办,多休息\n"),
                               ("Surgical_外科", "b.jsonl", json.dumps({"ask": "骨折怎么办", "answer": "去医院"}, ensure_ascii=False) + "\n"),
                               ("Pediatric_儿科", "c.tsv", "ask\tanswer\n发烧怎么办\t退烧\n"),
                               ("Oncology_肿瘤科", "d.txt", "问：?")):
        (med / folder).mkdir(parents=True)
        (med / folder / name).write_text(text, encoding="utf-8")
    cases.append(Case("files_department_mixed", "files", ["data", "report", str(med), "--kind", "medical", "--json"], "ok", 3,
                      totals=t(3, 3), contains='"ignored_files": ["Oncology_肿瘤科/d.txt"]'))
    # Delimiters.
    for name, d in (("semicolon", ";"), ("tab", "\t"), ("bar", "|")):
        data(f"csv_{name}", "messages", f"instruction{d}output\na{d}b\nc{d}d\n", "alpaca", t(2, 2), suffix=".csv",
             contains='"delimiter": ')
    data("medical_semicolon", "messages", "ask;answer\n头痛怎么办;多休息\n", "medical", t(1, 1), suffix=".csv")
    # Plans.
    nb_dir = b / "nb"
    write_notebook(nb_dir / "secret.ipynb", parameters=PARAMETERS + 'hf_token = ""\n')
    bad_params = nb_dir / "syntax.ipynb"
    write_notebook(bad_params, parameters="steps = (4\n")
    (nb_dir / "notnb.ipynb").write_text('{"a": 1}', encoding="utf-8")

    def plan(name: str, text: str, *extra: str, expect: str = "error", contains: str | None = None) -> None:
        path = b / f"r3_{name}.yaml"
        path.write_text(text, encoding="utf-8")
        cases.append(Case(f"plan_{name}", "plans", ["batch", str(path), "--out", str(r / f"out_{name}"), *extra], expect,
                          contains=contains))

    runs = "runs:\n  - notebook: nb/dummy.ipynb\n"
    plan("duplicate_runs", runs + "runs:\n  - notebook: nb/secret.ipynb\n", contains="written twice")
    plan("duplicate_env_key", "env: {A: '1', A: '2'}\n" + runs, contains="written twice")
    plan("grid_fixed_output_dir", "defaults: {output_dir: runs/x}\ngrid: {steps: [1, 2]}\n" + runs, contains="same output folder")
    plan("empty_output_dir", runs + "    parameters: {output_dir: ''}\n", contains="output_dir is empty")
    plan("blank_output_dir", runs + "    parameters: {output_dir: '  '}\n", contains="output_dir is empty")
    plan("env_equals", "env: {'A=B': '1'}\n" + runs, contains="not a valid variable name")
    plan("env_empty_name", "env: {'': '1'}\n" + runs, contains="not a valid variable name")
    plan("env_nul", 'env: {A: "x\\0y"}\n' + runs, contains="NUL character")
    plan("grid_secret", "grid: {hf_token: [hf_aaaaaaaaaaaaaaaaaaaaaa, hf_bbbbbbbbbbbbbbbbbbbbbb]}\nruns:\n  - notebook: nb/secret.ipynb\n",
         contains="is a secret")
    plan("tolerance_nan", runs, "--tolerance-abs", "nan", contains="finite")
    plan("tolerance_inf", runs, "--tolerance-rel", "inf", contains="finite")
    plan("write_reference_folder", runs, "--write-reference", str(r), contains="this is a folder")
    plan("syntax_error_parameters", "runs:\n  - notebook: nb/syntax.ipynb\n", "--dry-run", contains="does not parse")
    plan("not_a_notebook", "runs:\n  - notebook: nb/notnb.ipynb\n", "--dry-run", contains="not a Jupyter notebook")
    for command in (["export-script"], ["notebooks", "params"], ["notebooks", "clean"], ["notebooks", "stats"]):
        argv = [*command, str(nb_dir / "notnb.ipynb")] + (["-o", str(r / "x.py")] if command == ["export-script"] else [])
        cases.append(Case("not_a_notebook_" + "_".join(command), "messages", argv, "error", contains="not a Jupyter notebook"))
    cases.append(Case("export_over_notebook", "messages", ["export-script", str(nb_dir / "dummy.ipynb"), "-o",
                                                           str(nb_dir / "dummy.ipynb")], "error", contains="notebook itself"))
    # Secrets planted in the environment, plan env, parameters and KIT_SOURCE: in no output, in no file.
    planted_env = {"HF_TOKEN": "hf_SWEEPplantedENV00000000001",
                   "KIT_SOURCE": "git+https://me:SWEEPkitsource123@git.example.com/kit.git"}
    plan_env = {"GITLAB_PAT": "glpat-SWEEPplanted0000001", "DATABASE_URL": "postgres://u:SWEEPdbpass456@db/x",
                "MLFLOW_TRACKING_URI": "https://ml:SWEEPmlflow789@ml.example.com", "ODD": "sk-SWEEPplanted0000000000001",
                "SLACK": "xoxb-SWEEP-planted-0001", "AWS_KEY_ID": "AKIASWEEPPLANTED0001",
                "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTV0VFUCJ9.SWEEPsignature001"}
    params = {"hf_token": "hf_SWEEPplantedPARAM000000002"}
    secret_plan = b / "r3_secrets.yaml"
    secret_plan.write_text(yaml_dump({"env": plan_env, "runs": [
        {"notebook": "nb/secret.ipynb", "name": "ok", "parameters": params},
        {"notebook": "nb/secret.ipynb", "name": "fails", "parameters": {**params, "fail": True}}]}), encoding="utf-8")
    secrets = (*planted_env.values(), *plan_env.values(), *params.values(), "SWEEPkitsource123", "SWEEPdbpass456",
               "SWEEPmlflow789")
    out = r / "out_secrets"
    # A batch with a failed run exits 1 with its summary on stdout (not an error line): a "report" outcome.
    cases.append(Case("secrets_batch", "secrets", ["batch", str(secret_plan), "--out", str(out)], "error",
                      report=True, env=planted_env, secrets=secrets, scan=out))
    cases.append(Case("secrets_dry_run", "secrets", ["batch", str(secret_plan), "--out", str(out), "--dry-run"], "ok",
                      env=planted_env, secrets=secrets, scan=out))
    return cases


def yaml_dump(value: dict) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


def run_case(case: Case) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1", **(case.env or {})}
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", case.module, *case.argv], capture_output=True, text=True,
                              errors="replace", timeout=TIMEOUT_S, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"ok": False, "why": f"HANG (no exit in {TIMEOUT_S} s)", "seconds": TIMEOUT_S}
    seconds = time.perf_counter() - start
    out = {"code": proc.returncode, "seconds": seconds, "error": None, "skipped": {}, "traceback": False,
           "silent_loss": False, "secrets": 0}
    problems = []
    if "Traceback" in proc.stderr:
        problems.append("traceback on stderr")
        out["traceback"] = True
    leaked = [s for s in case.secrets if s in proc.stdout + proc.stderr]
    if case.scan is not None and case.scan.exists():
        for path in case.scan.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                leaked += [f"{s} in {path.name}" for s in case.secrets if s.encode() in data]
    if leaked:
        out["secrets"] = len(leaked)
        problems.append(f"secrets written: {leaked[:3]}")
    if case.contains is not None:
        shown = proc.stderr if proc.returncode else proc.stdout
        if case.contains not in shown:
            problems.append(f"output lacks {case.contains!r}")
    if proc.returncode not in (0, 1, 2):
        problems.append(f"exit {proc.returncode}")
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        prefix = "[kit] error: " if case.module == "kit.bootstrap" else "error: "
        if case.report:
            ok_lines = not lines and proc.returncode == 1 and bool(proc.stdout.strip())
        elif case.argv[:1] == ["no-such-command"]:  # argparse: usage line + error line, exit 2
            ok_lines = len(lines) == 2 and "invalid choice" in lines[-1]
        elif case.module == "kit.bootstrap":  # the venv module prints its own complaint first
            ok_lines = bool(lines) and lines[-1].startswith(prefix)
        else:
            ok_lines = len(lines) == 1 and lines[0].startswith(prefix)
        if not ok_lines:
            problems.append(f"stderr is not one error line: {proc.stderr[-300:]!r}")
        out["error"] = lines[-1] if lines else proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if case.expect == "error" and proc.returncode == 0:
        problems.append("expected an error, got exit 0")
    if case.expect == "ok" and proc.returncode != 0:
        problems.append(f"expected success, got exit {proc.returncode}")
    if proc.returncode == 0 and "--json" in case.argv:
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            problems.append("stdout is not one JSON object")
        else:
            for part in [*data["files"], data["totals"]]:
                if part["rows_read"] != part["rows_kept"] + sum(part["skipped"].values()):
                    problems.append(f"invariant broken: {part}")
            if case.rows is not None and data["totals"]["rows_read"] != case.rows:
                problems.append(f"silent loss: {data['totals']['rows_read']} rows read, the input has {case.rows}")
                out["silent_loss"] = True
            if case.totals is not None and data["totals"] != case.totals:
                problems.append(f"totals {data['totals']} != expected {case.totals}")
                out["silent_loss"] = True
            out["skipped"] = data["totals"]["skipped"]
            out["totals"] = data["totals"]
            out["encodings"] = sorted({str(f["encoding"]) for f in data["files"]})
    out["ok"] = not problems
    out["why"] = "; ".join(problems)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="build the cases in this folder and keep it")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--category", action="append", help="run only this category (repeatable), e.g. secrets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kit-hostile-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        cases = [c for c in build(root) if (not args.only or args.only in c.name)
                 and (not args.category or c.category in args.category)]
        failed, errors, skipped_cases, skipped_rows = 0, 0, 0, 0
        tracebacks, losses, secrets = 0, 0, 0
        by_category: dict[str, int] = {}
        for case in cases:
            outcome = run_case(case)
            by_category[case.category] = by_category.get(case.category, 0) + 1
            if outcome.get("code", 0) != 0 and outcome["ok"]:
                errors += 1
            if outcome.get("skipped"):
                skipped_cases += 1
                skipped_rows += sum(outcome["skipped"].values())
            status = "ok  " if outcome["ok"] else "FAIL"
            detail = outcome.get("error") or (f"exit 0 {outcome.get('totals')} {outcome.get('encodings', '')}"
                                              if "totals" in outcome else f"exit {outcome.get('code')}")
            print(f"{status} {case.category:<8} {case.name:<32} {outcome['seconds']:6.1f}s  {detail[:200]}"
                  + (f"  <-- {outcome['why']}" if outcome["why"] else ""), flush=True)
            failed += not outcome["ok"]
            tracebacks += outcome.get("traceback", False) or "HANG" in outcome["why"]
            losses += outcome.get("silent_loss", False)
            secrets += outcome.get("secrets", 0)
        print(f"\n{len(cases)} cases tried ({', '.join(f'{k} {v}' for k, v in by_category.items())}): "
              f"{errors} clear one-line errors, {skipped_cases} passed with counted skips ({skipped_rows} rows "
              f"skipped and counted), {failed} failed (traceback, hang, silent loss or wrong outcome)")
        print(f"tracebacks or hangs: {tracebacks}; silent losses: {losses}; secrets written: {secrets}")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
