"""Hostile input and faults (issue 15): each category has a generated fixture and its exact expected outcome.

Every CLI failure is one line on stderr (exit 2 bad input, 1 failed run), never a traceback; every row read is
kept or counted (``rows_read == kept + skipped``); no secret reaches a file a batch writes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_batch_helpers import write_notebook, write_plan

from kit.cli import main
from kit.paths import repo_root

GOOD = {"instruction": "说一句问候语", "input": "", "output": "你好"}
GOOD2 = {"instruction": "Say hello", "input": "", "output": "Hello"}


def kit(*args: Any) -> tuple[int, str, str]:
    """Run ``kit ARGS`` in this process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def one_error_line(err: str) -> str:
    """The single ``error:`` line of stderr (fails on a traceback or on more than one line)."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def report_json(path: Path, kind: str, *extra: Any) -> dict[str, Any]:
    code, out, err = kit("data", "report", path, "--kind", kind, "--json", *extra)
    assert code == 0, err
    data = json.loads(out)
    for part in [*data["files"], data["totals"]]:
        assert part["rows_read"] == part["rows_kept"] + sum(part["skipped"].values())
    return data


def notes(data: dict[str, Any]) -> dict[str, Any]:
    return data["details"][0]["notes"] if data["details"] else {}


# -- JSON values Python's parser rejects cost only their line -------------------------------------------------

BAD_JSON_LINES = {
    "int_over_4300_digits": '{"instruction": "x", "output": ' + "7" * 5000 + "}",
    "deep_nesting": '{"instruction": "x", "output": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "lone_surrogate": '{"instruction": "x\\ud800", "output": "y"}',
    "syntax_error": '{"instruction": "x", "output": ',
}


@pytest.mark.parametrize("name", sorted(BAD_JSON_LINES))
def test_bad_json_value_costs_only_its_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / "a.jsonl"
    lines = [json.dumps(GOOD, ensure_ascii=False), BAD_JSON_LINES[name], json.dumps(GOOD2)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = report_json(path, "alpaca")
    assert data["totals"] == {"rows_read": 3, "rows_kept": 2, "skipped": {"invalid_json": 1}}
    assert notes(data)["first_invalid_json_line"] == 2


def test_json_array_with_huge_int_and_surrogate_skips_those_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    body = ",\n".join([json.dumps(GOOD, ensure_ascii=False), '{"instruction": "x", "output": ' + "9" * 5000 + "}",
                       '{"instruction": "\\udfff", "output": "y"}', json.dumps(GOOD2)])
    path.write_text("[\n" + body + "\n]\n", encoding="utf-8")
    data = report_json(path, "alpaca")
    assert data["totals"] == {"rows_read": 4, "rows_kept": 2, "skipped": {"invalid_json": 2}}


def test_json_array_nested_too_deeply_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" + json.dumps(GOOD) + ", " + "[" * 100_000 + "]" * 100_000 + "]", encoding="utf-8")
    code, _, err = kit("data", "report", path, "--kind", "alpaca")
    assert code == 2 and "deep.json: a value is nested more deeply" in one_error_line(err)


# -- Paths: symlink loops, bad -o, a full disk ------------------------------------------------------------------


def test_symlink_loop_given_directly(tmp_path: Path) -> None:
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    code, _, err = kit("data", "report", loop, "--kind", "alpaca")
    assert code == 2 and "loop.jsonl" in one_error_line(err) and "symbolic link" in err


def test_symlink_loop_inside_a_folder(tmp_path: Path) -> None:
    (tmp_path / "d" / "IM_内科").mkdir(parents=True)
    (tmp_path / "d" / "IM_内科" / "good.csv").write_bytes("ask,answer\n问一,答一\n".encode("gbk"))
    (tmp_path / "d" / "IM_内科" / "loop.csv").symlink_to(tmp_path / "d" / "IM_内科" / "loop.csv")
    (tmp_path / "d" / "self").symlink_to(tmp_path / "d")  # a folder loop is not followed
    code, _, err = kit("data", "report", tmp_path / "d", "--kind", "medical")
    line = one_error_line(err)
    assert code == 2 and "loop.csv: a symbolic link that loops or points nowhere" in line


@pytest.fixture()
def alpaca_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(GOOD, ensure_ascii=False) + "\n" + json.dumps(GOOD2) + "\n", encoding="utf-8")
    return path


def test_convert_output_is_a_folder(tmp_path: Path, alpaca_file: Path) -> None:
    code, _, err = kit("data", "convert", alpaca_file, "--kind", "alpaca", "-o", tmp_path)
    assert code == 2 and "this is a folder; give the .jsonl file to write" in one_error_line(err)


def test_convert_output_under_a_file(tmp_path: Path, alpaca_file: Path) -> None:
    code, _, err = kit("data", "convert", alpaca_file, "--kind", "alpaca", "-o", alpaca_file / "sub" / "x.jsonl")
    assert code == 2 and f"{alpaca_file} is a file, not a folder" in one_error_line(err)


def test_convert_on_a_full_disk(tmp_path: Path, alpaca_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kit.data.cli as data_cli

    real_open = open

    class Full(io.TextIOWrapper):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode:
            return Full(real_open(path, "wb"), encoding="utf-8")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(data_cli, "open", full_open, raising=False)
    out = tmp_path / "out" / "clean.jsonl"
    code, _, err = kit("data", "convert", alpaca_file, "--kind", "alpaca", "-o", out)
    assert code == 1 and "the disk is full" in one_error_line(err)
    assert not out.exists() and list(out.parent.iterdir()) == []  # no half file, no temporary left


# -- Codecs -----------------------------------------------------------------------------------------------------

TRADITIONAL_ASK = "醫生您好，我最近頭痛得厲害，晚上睡不著覺，還經常覺得噁心。請問這是什麼原因？"
TRADITIONAL_ANSWER = "建議您到醫院神經內科就診，先做血壓測量和頭部檢查，平時注意休息。"


def test_big5_is_decoded_as_big5_not_gb18030_gibberish(tmp_path: Path) -> None:
    path = tmp_path / "IM_內科" / "big5.csv"
    path.parent.mkdir()
    path.write_bytes(f"ask,answer\n{TRADITIONAL_ASK},{TRADITIONAL_ANSWER}\n".encode("big5"))
    from kit.data import load_medical

    dataset, report = load_medical(path)
    assert report.files[0].encoding == "big5"
    assert dataset[0]["input"] == TRADITIONAL_ASK and dataset[0]["output"] == TRADITIONAL_ANSWER


def test_plausibility_separates_real_text_from_misdecoded_big5() -> None:
    from kit.data.files import IMPLAUSIBLE_SHARE, implausible_share

    raw = (TRADITIONAL_ASK + TRADITIONAL_ANSWER).encode("big5")
    assert implausible_share(raw.decode("gb18030"))[0] > 0.4
    assert implausible_share(raw.decode("big5"))[0] < IMPLAUSIBLE_SHARE
    simplified = "我今年三十岁，头痛两天了，需要做什么检查？建议到正规医院就诊，饮食宜清淡。"
    assert implausible_share(simplified.encode("gbk").decode("gbk"))[0] == 0.0


def test_no_plausible_codec_is_one_line_with_the_best_guess(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(b"ask,answer\n" + b"\xfe\xfe" * 50 + b",x\n")  # GB18030 user-defined area: private use
    code, _, err = kit("data", "report", path, "--kind", "medical")
    line = one_error_line(err)
    assert code == 2 and "odd.csv: no codec gives plausible text" in line and "best guess gb18030" in line


# -- CSV: unclosed quotes, huge fields, exit without a hang -----------------------------------------------------

UNCLOSED = {
    # name: (CSV text, rows in the file, kept, the line where the broken quote opens)
    "middle": ('ask,answer\n问一,答一\n问二,"未闭合\n问三,答三\n问四,答四\n', 4, 3, 3),
    "last_row": ('ask,answer\n问一,答一\n问二,答二\n问三,"未闭合\n', 3, 2, 4),
    "closes_at_a_later_quote": ('ask,answer\n问一,"答一\n问二,答二\n问三,"答三"\n问四,答四\n', 4, 3, 2),
    "swallows_to_the_end": ('ask,answer\n问一,答一\n"问二,答二\n问三,答三\n', 3, 2, 3),
}


def test_two_unclosed_quotes_that_pair_up_are_both_found(tmp_path: Path) -> None:
    """An even number of quotes: the first unclosed one closes at the next one's opening quote."""
    path = tmp_path / "q2.csv"
    path.write_bytes('ask,answer\n问一,"答一\n问二,答二\n问三,"答三\n问四,答四\n问五,答五\n'.encode("gbk"))
    data = report_json(path, "medical", "--no-dedupe")
    assert data["totals"] == {"rows_read": 5, "rows_kept": 3, "skipped": {"unclosed_quote": 2}}
    assert notes(data)["first_unclosed_quote_line"] == 2


def test_well_formed_quoting_is_not_suspicious() -> None:
    from kit.data.csvrows import suspicious_quotes

    good = 'a,b\r\n"医生常说""三分治、七分养""",x\n"",""\n"end",y'.encode()
    assert not any(suspicious_quotes([good[:i], good[i:]]) for i in range(len(good)))
    assert suspicious_quotes([b'a,b\nx,"y\nz,"w\n'])  # two unclosed quotes, an even count


@pytest.mark.parametrize("name", sorted(UNCLOSED))
def test_unclosed_quote_costs_one_row_and_names_its_line(tmp_path: Path, name: str) -> None:
    text, rows, kept, line = UNCLOSED[name]
    path = tmp_path / "q.csv"
    path.write_bytes(text.encode("gbk"))
    data = report_json(path, "medical", "--no-dedupe")
    assert data["totals"] == {"rows_read": rows, "rows_kept": kept, "skipped": {"unclosed_quote": 1}}
    assert notes(data)["first_unclosed_quote_line"] == line
    assert notes(data)["unclosed_quote"].startswith(f"line {line}: a quote opens in this row")


def test_unclosed_quote_in_a_generic_csv_is_a_counted_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes('instruction,output\n问一,答一\n问二,"未闭合\n问三,答三\n'.encode("gbk"))
    data = report_json(path, "alpaca", "--show-skipped", "3")
    assert data["totals"] == {"rows_read": 3, "rows_kept": 2, "skipped": {"bad_row": 1}}
    assert data["skipped_rows"]["bad_row"][0]["row"].startswith("line 3: a quote opens in this row")


def test_stray_quote_inside_an_unquoted_field_is_data(tmp_path: Path) -> None:
    path = tmp_path / "stray.csv"
    path.write_bytes('ask,answer\n问一,他说"好\n问二,答二\n'.encode("gbk"))
    data = report_json(path, "medical")
    assert data["totals"] == {"rows_read": 2, "rows_kept": 2, "skipped": {}}


def test_field_bigger_than_the_parser_block_parses(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    answer = "答" * (2 << 20)  # 6 MiB as UTF-8: bigger than the 4 MiB block
    path.write_bytes(f'ask,answer\n问一,"{answer}"\n问二,答二\n'.encode("gbk"))
    from kit.data import load_medical

    dataset, report = load_medical(path)
    assert report.totals == {"rows_read": 2, "rows_kept": 2, "skipped": {}}
    assert len(dataset[0]["output"]) == len(answer)


@pytest.mark.parametrize(("kind", "header"), [("medical", "ask,answer"), ("alpaca", "instruction,output")])
def test_bad_rows_and_a_huge_field_exit_cleanly(tmp_path: Path, kind: str, header: str) -> None:
    """The case that hung at exit in Arrow's thread-pool shutdown: bad rows counted, a huge field, no hang."""
    rows = [header, *(f"问{i},答{i}" + (",多" if i % 3 == 0 else "") for i in range(30_000))]
    rows.insert(15_000, '问x,"' + "答" * (2 << 20) + '"')
    path = tmp_path / "a.csv"
    path.write_bytes(("\n".join(rows) + "\n").encode("gbk"))
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    proc = subprocess.run([sys.executable, "-m", "kit", "data", "report", str(path), "--kind", kind, "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["totals"] == {"rows_read": 30_001, "rows_kept": 20_001, "skipped": {"bad_row": 10_000}}


# -- Zero rows: an error with the fix ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content", "kind"), [("empty.jsonl", b"", "alpaca"),
                                                        ("header_only.csv", b"department,title,ask,answer\n", "medical")])
def test_zero_rows_is_an_error(tmp_path: Path, name: str, content: bytes, kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, _, err = kit("data", "report", path, "--kind", kind)
    assert code == 2 and name in one_error_line(err)


# -- Every command: one line, --debug for the traceback ---------------------------------------------------------


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    alpaca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kit.data.cli as data_cli

    def boom(args: Any) -> int:
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(data_cli, "_report", boom)
    code, _, err = kit("data", "report", alpaca_file, "--kind", "alpaca")
    assert code == 1
    assert one_error_line(err) == "error: unexpected ZeroDivisionError: planted (rerun with --debug for the traceback)"
    code, _, err = kit("data", "report", alpaca_file, "--kind", "alpaca", "--debug")
    assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("error: unexpected")


def test_tokenizer_folder_missing(alpaca_file: Path, tmp_path: Path) -> None:
    code, _, err = kit("data", "report", alpaca_file, "--kind", "alpaca", "--tokenizer", tmp_path / "nope")
    assert code == 2 and one_error_line(err).startswith(f"error: --tokenizer {tmp_path / 'nope'}: no such folder")


def test_bootstrap_reports_the_pip_error_it_got(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from kit import bootstrap

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    pip_stderr = {"value": ""}

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if "-e" in cmd and cmd[-1] == ".[gpu]":
            return subprocess.CompletedProcess(cmd, 1, "", pip_stderr["value"])
        if "-e" in cmd or "-r" in cmd or "ipykernel" in cmd:
            raise AssertionError("stop here: the fallback install was reached")
        return subprocess.CompletedProcess(cmd, 0, "2.6.0\n", "")

    monkeypatch.setattr(bootstrap.subprocess, "run", fake_run)
    pip_stderr["value"] = "ERROR: Could not find a version that satisfies the requirement bitsandbytes==0.49.0\n"
    with pytest.raises(bootstrap.BootstrapError, match="satisfies the requirement bitsandbytes") as caught:
        bootstrap.install(venv, gpu=True)
    assert "xformers" not in str(caught.value)
    assert bootstrap.main(["--venv", str(venv), "install", "--gpu"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("[kit] error: pip could not install the kit with gpu: ERROR: Could")
    pip_stderr["value"] = "ERROR: No matching distribution found for xformers==0.0.33\n"
    with pytest.raises(AssertionError, match="fallback install was reached"):
        bootstrap.install(venv, gpu=True)
    assert "pip could not install xformers for torch 2.6.0 (ERROR: No matching distribution" in capsys.readouterr().out


# -- Batches ----------------------------------------------------------------------------------------------------


@pytest.fixture()
def notebook(tmp_path: Path) -> Path:
    return write_notebook(tmp_path / "nb" / "dummy.ipynb")


def test_plan_not_utf8(tmp_path: Path, notebook: Path) -> None:
    plan = tmp_path / "gbk.yaml"
    plan.write_bytes("runs:\n  - notebook: nb/dummy.ipynb\n    name: 中文\n".encode("gbk"))
    code, _, err = kit("batch", plan, "--dry-run")
    assert code == 2 and "gbk.yaml: the plan is not UTF-8 (byte " in one_error_line(err)


def test_plan_alias_bomb_is_refused_quickly(tmp_path: Path, notebook: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    plan = tmp_path / "bomb.yaml"
    plan.write_text("defaults:\n  tag: x\nruns:\n  - notebook: nb/dummy.ipynb\n    parameters:\n      upstream:\n"
                    + "".join(f"        {line}\n" for line in lines), encoding="utf-8")
    start = time.perf_counter()
    code, _, err = kit("batch", plan, "--dry-run")
    assert code == 2 and "aliases (*name) expand to more than 100,000 values" in one_error_line(err)
    assert time.perf_counter() - start < 10


def test_small_aliases_still_work(tmp_path: Path, notebook: Path) -> None:
    plan = tmp_path / "anchors.yaml"
    plan.write_text("runs:\n  - notebook: nb/dummy.ipynb\n    name: a\n    parameters: &p {steps: 2}\n"
                    "  - notebook: nb/dummy.ipynb\n    name: b\n    parameters: *p\n", encoding="utf-8")
    code, out, err = kit("batch", plan, "--dry-run")
    assert code == 0, err
    assert out.count('steps=2') == 2


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_out_that_is_a_file(tmp_path: Path, notebook: Path, where: str) -> None:
    plan = write_plan(tmp_path / "p.yaml", {"runs": [{"notebook": "nb/dummy.ipynb"}]})
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "runs"
    code, _, err = kit("batch", plan, "--out", out)
    assert code == 2
    assert ("this is a file, not a folder" if where == "file" else f"{blocker} is a file") in one_error_line(err)


SECRETS = {"HF_TOKEN": "hf_plantedSECRET1111", "WANDB_API_KEY": "wandb-planted-2222",
           "DB_PASSWORD": "pw-planted-3333", "MY_SERVICE_SECRET": "planted-4444", "HUGGING_FACE_HUB_TOKEN": "hf_p5555"}


@pytest.mark.parametrize("backend", ["local", "slurm"])
def test_secrets_never_reach_a_file_the_batch_writes(tmp_path: Path, backend: str) -> None:
    if backend == "slurm":
        pytest.importorskip("submitit", reason="submitit is an optional extra: pip install -e '.[slurm]'")
    from test_batch_helpers import BODY

    # The notebook checks that it got the secret (writing only a yes/no), so redaction did not lose it.
    digest = hashlib.sha256(SECRETS["HF_TOKEN"].encode()).hexdigest()
    check = ("import hashlib, os\n"
             f"has_secret = hashlib.sha256(os.environ.get('HF_TOKEN', '').encode()).hexdigest() == {digest!r}\n")
    write_notebook(tmp_path / "nb" / "dummy.ipynb",
                   body=check + BODY.replace('"eval": {', '"has_secret": has_secret, "eval": {'))
    plan = write_plan(tmp_path / "p.yaml", {"env": {**SECRETS, "TOKENIZERS_PARALLELISM": "false"},
                                           "runs": [{"notebook": "nb/dummy.ipynb", "name": "a"},
                                                    {"notebook": "nb/dummy.ipynb", "name": "b",
                                                     "parameters": {"fail": True}}]})
    out = tmp_path / "out"
    code, printed, err = kit("batch", plan, "--out", out, "--backend", backend)
    assert code == 1, err  # run b fails on purpose: its error path writes files too
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) >= 8  # manifests, executed notebooks, logs, metrics, parameters, summaries, curves
    for path in written:
        data = path.read_bytes()
        for value in SECRETS.values():
            assert value.encode() not in data, f"{value} leaked into {path}"
    for value in SECRETS.values():
        assert value not in printed + err
    manifest = json.loads(next(out.glob("01-a-*/manifest.json")).read_text(encoding="utf-8"))
    assert {k: manifest["env"][k] for k in SECRETS} == dict.fromkeys(SECRETS, "<redacted>")
    assert manifest["env"]["TOKENIZERS_PARALLELISM"] == "false"
    assert manifest["metrics"]["has_secret"] is True
    assert "HF_TOKEN" not in os.environ or os.environ["HF_TOKEN"] != SECRETS["HF_TOKEN"]


def test_second_ctrl_c_still_finalises(tmp_path: Path) -> None:
    """Two Ctrl-C while a notebook ignores SIGTERM: killed at once, manifest ``interrupted``, summary written."""
    body = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(sleep_s)\n"
    write_notebook(tmp_path / "nb" / "stubborn.ipynb", body=body)
    plan = write_plan(tmp_path / "slow.yaml", {"runs": [{"notebook": "nb/stubborn.ipynb", "name": "slow",
                                                         "parameters": {"sleep_s": 120.0}}]})
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    runner = subprocess.Popen([sys.executable, "-m", "kit", "batch", str(plan), "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            logs = list(out.glob("01-slow-*/papermill.log"))
            if logs and "Executing Cell 3" in logs[0].read_text(errors="replace"):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the slow run never started")
        time.sleep(1.0)
        runner.send_signal(signal.SIGINT)
        time.sleep(0.5)
        runner.send_signal(signal.SIGINT)
        start = time.perf_counter()
        printed, _ = runner.communicate(timeout=60)
        stopped_in = time.perf_counter() - start
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, printed
    assert "Traceback" not in printed and "killing the running notebooks now" in printed
    assert stopped_in < 30
    manifest = json.loads(next(out.glob("01-slow-*/manifest.json")).read_text(encoding="utf-8"))
    assert manifest["status"] == "interrupted" and manifest["ended_at"]
    assert "interrupted" in (out / "summary.csv").read_text(encoding="utf-8")
    assert (out / "summary.md").is_file()


# -- Issue 26: secrets by value, in the environment, in plan env, in parameters, in KIT_SOURCE --------------------

PLANTED_ENV = {"HF_TOKEN": "hf_PLANTEDenvironment0000000001",
               "KIT_SOURCE": "git+https://kituser:PLANTEDkitsource77@git.example.com/kit.git"}
PLANTED_PLAN_ENV = {
    "GITLAB_PAT": "glpat-PLANTEDgitlab00000001",
    "DATABASE_URL": "postgres://app:PLANTEDdbpass99@db.example.com:5432/x",
    "MLFLOW_TRACKING_URI": "https://ml:PLANTEDmlflow55@mlflow.example.com",
    "INNOCENT_NAME": "ghp_PLANTEDgithubtoken0000000000001",
    "MY_ACCESS": "PLANTEDaccess4444",
}
PLANTED_PARAMS = {"hf_token": "hf_PLANTEDparameter00000000002", "wandb_api_key": "PLANTEDwandbparam3333"}
PLANTED_VALUES = [
    "hf_PLANTEDenvironment0000000001", "PLANTEDkitsource77", "glpat-PLANTEDgitlab00000001", "PLANTEDdbpass99",
    "PLANTEDmlflow55", "ghp_PLANTEDgithubtoken0000000000001", "PLANTEDaccess4444",
    "hf_PLANTEDparameter00000000002", "PLANTEDwandbparam3333",
]


def test_planted_secrets_reach_no_file_by_name_or_by_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file a batch writes (manifests, parameters.yaml, executed notebooks, logs, metrics, summaries) and its
    output hold none of the planted values; the notebook still receives each one (it checks hashes)."""
    from test_batch_helpers import BODY, PARAMETERS

    for name, value in PLANTED_ENV.items():
        monkeypatch.setenv(name, value)
    wanted = {"HF_TOKEN": PLANTED_ENV["HF_TOKEN"], "DATABASE_URL": PLANTED_PLAN_ENV["DATABASE_URL"],
              "KIT_SOURCE": PLANTED_ENV["KIT_SOURCE"]}
    check = "import hashlib, os\n" + "".join(
        f"ok_{n.lower()} = hashlib.sha256(os.environ.get({n!r}, '').encode()).hexdigest() == "
        f"{hashlib.sha256(v.encode()).hexdigest()!r}\n" for n, v in wanted.items())
    check += "".join(f"ok_{p} = hashlib.sha256(str({p}).encode()).hexdigest() == "
                     f"{hashlib.sha256(v.encode()).hexdigest()!r}\n" for p, v in PLANTED_PARAMS.items())
    flags = ", ".join(f'"ok_{k.lower()}": ok_{k.lower()}' for k in [*wanted, *PLANTED_PARAMS])
    write_notebook(tmp_path / "nb" / "secret.ipynb", parameters=PARAMETERS + 'hf_token = ""\nwandb_api_key = None\n',
                   body=check + BODY.replace('"eval": {', flags + ', "eval": {'))
    plan = write_plan(tmp_path / "p.yaml", {"env": PLANTED_PLAN_ENV,
                                           "runs": [{"notebook": "nb/secret.ipynb", "name": "a",
                                                     "parameters": dict(PLANTED_PARAMS)},
                                                    {"notebook": "nb/secret.ipynb", "name": "b",
                                                     "parameters": {**PLANTED_PARAMS, "fail": True}}]})
    out = tmp_path / "out"
    code, printed, err = kit("batch", plan, "--out", out)
    assert code == 1, err  # run b fails on purpose: its error path writes files too
    assert kit("batch", plan, "--out", out, "--dry-run")[0] == 0
    dry = kit("batch", plan, "--out", out, "--dry-run")[1]
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) >= 10
    for path in written:
        data = path.read_bytes()
        for value in PLANTED_VALUES:
            assert value.encode() not in data, f"{value} leaked into {path}"
    for value in PLANTED_VALUES:
        assert value not in printed + err + dry
    manifest = json.loads(next(out.glob("01-a-*/manifest.json")).read_text(encoding="utf-8"))
    assert all(manifest["metrics"][f"ok_{k.lower()}"] is True for k in [*wanted, *PLANTED_PARAMS]), manifest["metrics"]
    assert manifest["parameters"]["hf_token"] == "<redacted>"
    assert manifest["env"]["DATABASE_URL"] == "postgres://app:<redacted>@db.example.com:5432/x"
    assert manifest["env"]["INNOCENT_NAME"] == "<redacted>" and manifest["env"]["GITLAB_PAT"] == "<redacted>"
    cells = json.loads(next(out.glob("01-a-*/secret.ipynb")).read_text(encoding="utf-8"))["cells"]
    injected = next("".join(c["source"]) for c in cells if "injected-parameters" in c["metadata"].get("tags", []))
    assert """hf_token = __import__("os").environ.get('KIT_SECRET_PARAM_HF_TOKEN', "")""" in injected


# -- Issue 26: missing values, dropped columns, silent losses -----------------------------------------------------


def _lines(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


MISSING_CASES = {
    # kind: (lines, expected totals, the kept field that must never read "nan")
    "alpaca": (['{"instruction": "a", "input": NaN, "output": "x"}', '{"instruction": "b", "input": "", "output": NaN}',
                '{"instruction": "c", "input": "nan", "output": "inf"}', '{"instruction": "d", "input": null, "output": "<NA>"}',
                '{"instruction": "e", "input": "NaN", "output": "y"}'],
               {"rows_read": 5, "rows_kept": 2, "skipped": {"missing_value": 3}}, "input"),
    "chat": (['{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": NaN}]}',
              '{"messages": [{"role": "user", "content": "nan"}, {"role": "assistant", "content": "ok"}]}',
              '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "fine"}]}'],
             {"rows_read": 3, "rows_kept": 1, "skipped": {"missing_value": 2}}, "messages"),
    "preference": (['{"prompt": "q", "chosen": NaN, "rejected": "b"}', '{"prompt": "q", "chosen": "a", "rejected": "-inf"}',
                    '{"prompt": Infinity, "chosen": "a", "rejected": "b"}', '{"prompt": "q2", "chosen": "a", "rejected": "b"}'],
                   {"rows_read": 4, "rows_kept": 1, "skipped": {"missing_value": 3}}, "chosen"),
    "gsm8k": (['{"question": "q", "answer": NaN}', '{"question": NaN, "answer": "#### 4"}',
               '{"question": "q3", "answer": "2+2\\n#### 4"}'],
              {"rows_read": 3, "rows_kept": 1, "skipped": {"missing_value": 2}}, "answer"),
}


@pytest.mark.parametrize("kind", sorted(MISSING_CASES))
def test_missing_cells_never_become_text(tmp_path: Path, kind: str) -> None:
    lines, totals, field = MISSING_CASES[kind]
    data = report_json(_lines(tmp_path / "m.jsonl", lines), kind)
    assert data["totals"] == totals
    from kit.data import load_data

    dataset, _ = load_data(str(tmp_path / "m.jsonl"), kind)
    assert not any(str(v).strip().lower() in ("nan", "inf", "-inf", "<na>") for v in dataset[field])
    assert "nan" not in json.dumps(dataset.to_list()).lower().replace("nano", "")


def test_medical_csv_nan_cells_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "IM_内科" / "a.csv"
    path.parent.mkdir()
    path.write_bytes("ask,answer,title\n头痛怎么办,多休息,nan\n胃痛怎么办,nan,x\nnan,答,NaN\n".encode("gbk"))
    data = report_json(path, "medical")
    assert data["totals"] == {"rows_read": 3, "rows_kept": 1, "skipped": {"missing_value": 2}}
    from kit.data import load_medical

    dataset, _ = load_medical(path)
    assert dataset[0]["title"] == ""


def test_dolly_fix_keeps_context_as_input(tmp_path: Path) -> None:
    path = _lines(tmp_path / "dolly.jsonl", [{"instruction": f"i{i}", "context": f"c{i}", "response": f"r{i}",
                                              "category": "qa"} for i in range(3)])
    code, _, err = kit("data", "report", path, "--kind", "alpaca")
    assert code == 2 and "--columns output=response,input=context" in one_error_line(err)
    data = report_json(path, "alpaca", "--columns", "output=response,input=context")
    assert data["totals"]["rows_kept"] == 3 and data["unread_columns"] == ["category"]
    data = report_json(path, "alpaca", "--columns", "output=response")
    assert data["unread_columns"] == ["context", "category"]  # kept out only when the user says so, and named
    code, out, _ = kit("data", "report", path, "--kind", "alpaca", "--columns", "output=response")
    assert "columns not read: context, category" in out


@pytest.mark.parametrize(("header", "kind", "column"), [("instruction,output,output", "alpaca", "output"),
                                                        ("ask,answer,ask", "medical", "ask")])
def test_duplicate_csv_header_column_is_an_error(tmp_path: Path, header: str, kind: str, column: str) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(f"{header}\na,b,c\n", encoding="utf-8")
    code, _, err = kit("data", "report", path, "--kind", kind)
    assert code == 2 and f"dup.csv: the header names column '{column}' twice (columns " in one_error_line(err)


def test_openai_weight_zero_turns_are_not_trained(tmp_path: Path) -> None:
    def user(text: str) -> dict[str, Any]:
        return {"role": "user", "content": text}

    def bot(text: str, weight: Any = 1) -> dict[str, Any]:
        return {"role": "assistant", "content": text, "weight": weight}

    rows = [{"messages": [user("a"), bot("x", 0), user("b"), bot("y")]},  # weight 0 before a trained turn
            {"messages": [user("a"), bot("x"), user("b"), bot("y", 0)]},  # the untrained tail is cut
            {"messages": [user("a"), bot("x", 0.0)]},  # nothing to train
            {"messages": [user("q"), bot("r", "0")]}]
    data = report_json(_lines(tmp_path / "w.jsonl", rows), "chat", "--no-dedupe")
    assert data["totals"] == {"rows_read": 4, "rows_kept": 1, "skipped": {"weight_zero_turn": 3}}
    assert data["fixed"] == {"untrained_turns_dropped": 1}


def test_two_json_objects_on_one_line_are_two_rows(tmp_path: Path) -> None:
    path = _lines(tmp_path / "two.jsonl", [json.dumps(GOOD, ensure_ascii=False) + " " + json.dumps(GOOD2),
                                           '{"instruction": "x", "output": "y"}{"instruction": "z", "output": "w"}'])
    data = report_json(path, "alpaca")
    assert data["totals"] == {"rows_read": 4, "rows_kept": 4, "skipped": {}}
    assert notes(data)["first_line_with_several_objects"] == 1


def test_files_a_department_folder_holds_are_read_or_named(tmp_path: Path) -> None:
    root = tmp_path / "med"
    for folder in ("IM_内科", "Surgical_外科", "Pediatric_儿科", "Oncology_肿瘤科"):
        (root / folder).mkdir(parents=True)
    (root / "IM_内科" / "a.csv").write_bytes("ask,answer\n头痛怎么办,多休息\n".encode("gbk"))
    _lines(root / "Surgical_外科" / "b.jsonl", [{"ask": "骨折怎么办", "answer": "去医院"}])
    (root / "Pediatric_儿科" / "c.tsv").write_text("ask\tanswer\n发烧怎么办\t退烧\n", encoding="utf-8")
    (root / "Oncology_肿瘤科" / "notes.txt").write_text("问：? 答：?", encoding="utf-8")
    (root / "Oncology_肿瘤科" / "d.xlsx").write_bytes(b"PK")
    data = report_json(root, "medical")
    assert data["totals"] == {"rows_read": 3, "rows_kept": 3, "skipped": {}}
    assert data["ignored_files"] == ["Oncology_肿瘤科/d.xlsx", "Oncology_肿瘤科/notes.txt"]
    assert set(data["quality"]["balance"]["department"]) == {"内科", "外科", "儿科"}
    alpaca = tmp_path / "alp"
    alpaca.mkdir()
    _lines(alpaca / "a.jsonl", [GOOD])
    (alpaca / "b.txt").write_text("x")
    assert report_json(alpaca, "alpaca")["ignored_files"] == ["b.txt"]


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "vertical bar")])
def test_csv_with_another_delimiter_is_read_and_named(tmp_path: Path, delimiter: str, name: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"instruction{delimiter}output\n问一{delimiter}答一\n问二{delimiter}\"答,二\"\n", encoding="utf-8")
    data = report_json(path, "alpaca")
    assert data["totals"] == {"rows_read": 2, "rows_kept": 2, "skipped": {}}
    assert notes(data)["delimiter"] == f"{name} ({delimiter!r})"
    med = tmp_path / "m.csv"
    med.write_text(f"ask{delimiter}answer\n头痛怎么办{delimiter}多休息\n", encoding="utf-8")
    assert report_json(med, "medical")["totals"]["rows_kept"] == 1


def test_medical_question_from_title_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("department,title,ask,answer\n内科,头痛怎么办,无,多休息\n", encoding="utf-8")
    data = report_json(path, "medical", "--columns", "question=title")
    assert data["totals"] == {"rows_read": 1, "rows_kept": 1, "skipped": {}}


# -- Issue 26: plans that would do the wrong thing quietly --------------------------------------------------------

PLAN_ERRORS = {
    "duplicate_runs_key": ("runs:\n  - notebook: nb/dummy.ipynb\n    name: a\nruns:\n  - notebook: nb/dummy.ipynb\n"
                           "    name: b\n", "line 4: the key 'runs' is written twice in one mapping (first on line 1)"),
    "duplicate_parameter": ("runs:\n  - notebook: nb/dummy.ipynb\n    parameters: {steps: 2, steps: 3}\n",
                            "the key 'steps' is written twice"),
    "grid_fixed_output_dir": ("defaults: {output_dir: runs/fixed}\ngrid: {learning_rate: [0.1, 0.2]}\n"
                              "runs:\n  - notebook: nb/dummy.ipynb\n",
                              "the grid expands one entry into several runs but output_dir is fixed"),
    "two_runs_one_output_dir": ("runs:\n  - {notebook: nb/dummy.ipynb, name: a, parameters: {output_dir: o}}\n"
                                "  - {notebook: nb/dummy.ipynb, name: b, parameters: {output_dir: o}}\n",
                                "both set the same output_dir"),
    "empty_output_dir": ("runs:\n  - notebook: nb/dummy.ipynb\n    parameters: {output_dir: ''}\n",
                         "output_dir is empty, which would write into the repository root"),
    "env_name_with_equals": ("env: {'A=B': x}\nruns:\n  - notebook: nb/dummy.ipynb\n",
                             "env: 'A=B' is not a valid variable name"),
    "env_value_with_nul": ('env: {A: "x\\0y"}\nruns:\n  - notebook: nb/dummy.ipynb\n',
                           "env: the value of 'A' holds a NUL character"),
    "eval_samples_zero": ("runs:\n  - notebook: nb/secret.ipynb\n    parameters: {eval_samples: 0}\n",
                          "eval_samples=0 does not skip evaluation"),
    "grid_over_a_secret": ("grid: {tag: [a, b], hf_token: [hf_aaaaaaaaaaaaaaaaaaaa, hf_bbbbbbbbbbbbbbbbbbbb]}\n"
                           "runs:\n  - notebook: nb/secret.ipynb\n", "grid: 'hf_token' is a secret"),
}


@pytest.mark.parametrize("name", sorted(PLAN_ERRORS))
def test_plan_mistakes_are_refused_before_anything_runs(tmp_path: Path, name: str) -> None:
    from test_batch_helpers import PARAMETERS

    write_notebook(tmp_path / "nb" / "dummy.ipynb")
    write_notebook(tmp_path / "nb" / "secret.ipynb", parameters=PARAMETERS + 'hf_token = ""\neval_samples = 8\n')
    text, expected = PLAN_ERRORS[name]
    plan = tmp_path / "p.yaml"
    plan.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    for extra in (["--dry-run"], []):
        code, _, err = kit("batch", plan, "--out", out, *extra)
        assert code == 2 and expected in one_error_line(err), err
    assert not out.exists()


@pytest.mark.parametrize("option", [("--tolerance-abs", "nan"), ("--tolerance-rel", "inf")])
def test_tolerance_must_be_finite(tmp_path: Path, notebook: Path, option: tuple[str, str]) -> None:
    plan = write_plan(tmp_path / "p.yaml", {"runs": [{"notebook": "nb/dummy.ipynb"}]})
    code, _, err = kit("batch", plan, "--out", tmp_path / "out", *option)
    assert code == 2 and "must be finite numbers" in one_error_line(err) and not (tmp_path / "out").exists()


def test_write_reference_target_checked_before_the_batch(tmp_path: Path, notebook: Path) -> None:
    plan = write_plan(tmp_path / "p.yaml", {"runs": [{"notebook": "nb/dummy.ipynb"}]})
    code, _, err = kit("batch", plan, "--out", tmp_path / "out", "--write-reference", tmp_path)
    assert code == 2 and "--write-reference" in one_error_line(err) and "this is a folder" in err
    assert not (tmp_path / "out").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = kit("batch", plan, "--out", tmp_path / "out", "--write-reference", blocker / "ref.json")
    assert code == 2 and f"{blocker} is a file, not a folder" in one_error_line(err)


def test_read_only_out_is_named_by_the_folder(tmp_path: Path, notebook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = write_plan(tmp_path / "p.yaml", {"runs": [{"notebook": "nb/dummy.ipynb"}]})
    out = tmp_path / "ro"
    out.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == out else real_access(p, mode))
    code, _, err = kit("batch", plan, "--out", out)
    assert code == 2 and one_error_line(err) == f"error: --out {out}: this folder is not writable; choose another folder or fix its permissions"


# -- Issue 26: messages that help -----------------------------------------------------------------------------------


def test_parameters_cell_syntax_error_names_the_notebook(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "nb" / "broken.ipynb", parameters="steps = 4\nlr = (0.1\n")
    plan = write_plan(tmp_path / "p.yaml", {"runs": [{"notebook": "nb/broken.ipynb"}]})
    code, _, err = kit("batch", plan, "--dry-run")
    assert code == 2 and f"{nb}: the cell tagged 'parameters' does not parse" in one_error_line(err)
    code, _, err = kit("export-script", nb, "-o", tmp_path / "x.py")
    assert code == 2 and "does not parse" in one_error_line(err)


@pytest.mark.parametrize("content", ['{"a": 1}', "[]", '{"cells": [1, 2]}', '{"cells": "x"}', "not json"])
def test_json_that_is_not_a_notebook_is_one_line_everywhere(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "nb" / "bad.ipynb"
    bad.parent.mkdir()
    bad.write_text(content, encoding="utf-8")
    plan = write_plan(tmp_path / "p.yaml", {"runs": [{"notebook": "nb/bad.ipynb"}]})
    for argv in (["batch", plan, "--dry-run"], ["export-script", bad, "-o", tmp_path / "x.py"],
                 ["notebooks", "clean", bad], ["notebooks", "params", bad], ["notebooks", "stats", bad]):
        code, _, err = kit(*argv)
        assert code == 2 and "bad.ipynb: " in one_error_line(err) and "unexpected" not in err, (argv, err)
    code, out, err = kit("notebooks", "check", bad)
    assert code == 1 and not err and "bad.ipynb: " in out and "unexpected" not in out


def test_export_script_refuses_to_overwrite_its_notebook(tmp_path: Path, notebook: Path) -> None:
    before = notebook.read_bytes()
    code, _, err = kit("export-script", notebook, "-o", notebook)
    assert code == 2 and "this is the notebook itself" in one_error_line(err)
    assert notebook.read_bytes() == before


def test_multi_process_failure_names_the_cause() -> None:
    from kit.batch.manifest import failure_cause

    log = "\n".join([
        "[launch] accelerate launch train.py --max_steps 2",
        "[rank1]: Traceback (most recent call last):",
        '[rank1]:   File "train.py", line 40, in <module>',
        "[rank1]: ValueError: learning_rate must be positive, got -1",
        "E1204 09:00:00 torch/distributed/elastic/multiprocessing/api.py:869] failed (exitcode: 1)",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        "============================================================",
        "train.py FAILED",
        "subprocess.CalledProcessError: Command '['python', 'train.py']' returned non-zero exit status 1.",
    ])
    assert failure_cause(log) == "ValueError: learning_rate must be positive, got -1"
    assert failure_cause("torch.distributed.elastic.multiprocessing.errors.ChildFailedError: x") is None


def test_read_only_output_folder_is_named_not_the_temporary(tmp_path: Path, alpaca_file: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """(As root, chmod does not stop writes: the refusal is planted where the file is opened.)"""
    import kit.data.cli as data_cli

    real_open = open

    def refusing_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(data_cli, "open", refusing_open, raising=False)
    out = tmp_path / "ro" / "clean.jsonl"
    code, _, err = kit("data", "convert", alpaca_file, "--kind", "alpaca", "-o", out)
    line = one_error_line(err)
    assert code == 2 and f"the folder {out.parent} is not writable" in line and ".clean.jsonl.tmp" not in line
    from kit.batch.manifest import write_json
    from kit.errors import RunFailed

    folder = tmp_path / "run"
    folder.mkdir()
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: (_ for _ in ()).throw(
        PermissionError(errno.EACCES, "Permission denied", str(self))))
    with pytest.raises(RunFailed, match=rf"^{folder}: cannot write manifest.json in this folder \(Permission denied\)"):
        write_json(folder / "manifest.json", {"a": 1})


def test_working_folder_variables_are_not_secrets() -> None:
    """PWD/OLDPWD end in a password-like part but hold the shell's folders: redacting them blanked every path."""
    from kit.runtime.redact import environment_secrets, is_secret_name

    assert not is_secret_name("PWD") and not is_secret_name("OLDPWD") and is_secret_name("DB_PWD")
    assert "/work/main" not in environment_secrets({"PWD": "/work/main", "OLDPWD": "/work/main"})
