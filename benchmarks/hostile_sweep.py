"""Feed the CLI hostile files and faults of every category from issue 15; check each outcome.

    .venv/bin/python benchmarks/hostile_sweep.py [--keep DIR] [--only SUBSTRING]

Every case runs ``python -m kit ...`` (or ``python -m kit.bootstrap``) in a fresh subprocess with a timeout and
must end with: no traceback on stderr; no hang (the timeout); exit 0, 1 or 2; on a non-zero exit exactly one
``error:`` line on stderr; on exit 0 with ``--json`` the invariant ``rows_read == rows_kept + skipped`` for every
file and the totals, and ``rows_read`` equal to the number of records the case wrote (no silent loss). Cases
marked ``error`` must fail, cases marked ``ok`` must succeed. Prints one line per case and the totals: cases
tried, clear errors, cases that passed with counted skips (and how many rows were skipped).
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
    return cases


def run_case(case: Case) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", case.module, *case.argv], capture_output=True, text=True,
                              errors="replace", timeout=TIMEOUT_S, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"ok": False, "why": f"HANG (no exit in {TIMEOUT_S} s)", "seconds": TIMEOUT_S}
    seconds = time.perf_counter() - start
    out = {"code": proc.returncode, "seconds": seconds, "error": None, "skipped": {}}
    problems = []
    if "Traceback" in proc.stderr:
        problems.append("traceback on stderr")
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kit-hostile-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        cases = [c for c in build(root) if not args.only or args.only in c.name]
        failed, errors, skipped_cases, skipped_rows = 0, 0, 0, 0
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
        print(f"\n{len(cases)} cases tried ({', '.join(f'{k} {v}' for k, v in by_category.items())}): "
              f"{errors} clear one-line errors, {skipped_cases} passed with counted skips ({skipped_rows} rows "
              f"skipped and counted), {failed} failed (traceback, hang, silent loss or wrong outcome)")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
