"""``kit batch`` end to end on tiny pure-Python notebooks: failures, manifests, summary, resume, references,
dependencies, ``--jobs 2`` and Ctrl-C."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_batch_helpers import write_notebook, write_plan

from kit.batch.reference import current_device_type
from kit.batch.resources import cpu_cores, visible_gpus
from kit.cli import main
from kit.paths import repo_root


def kit_batch(*args: str) -> tuple[int, str]:
    """Run ``kit batch ARGS`` in this process; return the exit code and what it printed."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["batch", *map(str, args)])
    return code, buffer.getvalue()


def manifests(out: Path) -> dict[str, dict]:
    return {
        m["name"]: m for m in (json.loads(p.read_text()) for p in sorted(out.glob("*/manifest.json")))
    }


def summary(out: Path) -> list[dict[str, str]]:
    with open(out / "summary.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The "done when" batch: three runs, one fails at run time, two jobs at a time."""
    root = tmp_path_factory.mktemp("batch")
    write_notebook(root / "nb" / "dummy.ipynb")
    data = root / "data" / "train.jsonl"
    data.parent.mkdir()
    data.write_text('{"instruction": "hi", "output": "你好"}\n', encoding="utf-8")
    plan = write_plan(root / "plan.yaml", {"runs": [
        {"notebook": "nb/dummy.ipynb", "name": "a", "parameters": {"learning_rate": 0.1}},
        {"notebook": "nb/dummy.ipynb", "name": "b", "parameters": {"learning_rate": 0.2, "data_path": str(data)}},
        {"notebook": "nb/dummy.ipynb", "name": "c", "parameters": {"learning_rate": 0.3, "fail": True}},
    ]})
    out = root / "out"
    start = time.perf_counter()
    code, printed = kit_batch(plan, "--out", out, "--jobs", "2")
    return {"root": root, "plan": plan, "out": out, "code": code, "printed": printed, "data": data,
            "seconds": time.perf_counter() - start}


def test_failed_run_does_not_stop_the_batch(three_runs: dict) -> None:
    assert three_runs["code"] == 1
    found = manifests(three_runs["out"])
    assert {name: m["status"] for name, m in found.items()} == {"a": "completed", "b": "completed", "c": "failed"}


def test_manifest_records_what_produced_the_result(three_runs: dict) -> None:
    found = manifests(three_runs["out"])
    notebook = three_runs["root"] / "nb" / "dummy.ipynb"
    head = subprocess.run(["git", "-C", str(repo_root()), "rev-parse", "HEAD"], capture_output=True, text=True)
    for name in ("a", "b"):
        m = found[name]
        run_dir = three_runs["out"] / m["run_id"]
        assert m["notebook"]["sha256"] == hashlib.sha256(notebook.read_bytes()).hexdigest()
        assert m["parameters"]["output_dir"] == str(run_dir / "output")
        assert len(m["parameters_sha256"]) == 64 and m["run_id"].endswith(m["hash"][:8])
        assert m["git"] is None if head.returncode else m["git"]["commit"] == head.stdout.strip()
        assert m["git"] is None or isinstance(m["git"]["dirty"], bool)
        assert set(m["versions"]) >= {"python", "torch", "transformers", "trl", "peft", "datasets", "unsloth"}
        assert m["device"] == {"type": "cpu", "name": "dummy-cpu", "memory_gb": 1.0}
        assert m["seed"] == 1  # the notebook's default, reported back in metrics.json
        start, end = dt.datetime.fromisoformat(m["started_at"]), dt.datetime.fromisoformat(m["ended_at"])
        assert start.tzinfo is not None and start <= end
        assert m["wall_s"] > m["notebook_s"] > 0 and m["overhead_s"] == pytest.approx(m["wall_s"] - m["notebook_s"], abs=0.01)
        assert m["peak_memory_mb"] == 12.5 and len(m["loss_trace"]) == 4 and m["error"] is None
        copied = json.loads((run_dir / "metrics.json").read_text())
        assert copied == json.loads((run_dir / "output" / "metrics.json").read_text())
        assert m["final_loss"] == copied["final_loss"] == copied["loss_trace"][-1]["loss"]
        assert (run_dir / "dummy.ipynb").is_file() and (run_dir / "papermill.log").is_file()
    data = three_runs["data"]
    assert found["b"]["data_files"] == [
        {"path": str(data.resolve()), "sha256": hashlib.sha256(data.read_bytes()).hexdigest(), "bytes": data.stat().st_size}
    ]
    assert found["b"]["data_files_source"] == "data_path parameter"


def test_failed_run_keeps_notebook_and_concise_error(three_runs: dict) -> None:
    m = manifests(three_runs["out"])["c"]
    run_dir = three_runs["out"] / m["run_id"]
    executed = json.loads((run_dir / "dummy.ipynb").read_text())
    assert executed["metadata"]["papermill"]["exception"] is True
    assert m["error"]["ename"] == "ValueError" and m["error"]["evalue"] == "planned failure at learning_rate=0.3"
    assert m["error"]["cell"] == 1 and "raise ValueError" in m["error"]["traceback"]
    assert m["device"]["type"] in ("cpu", "cuda") and m["loss_trace"] == [] and m["ended_at"]


def test_summary_report_and_curves(three_runs: dict) -> None:
    out = three_runs["out"]
    rows = summary(out)
    assert [r["status"] for r in rows] == ["completed", "completed", "failed"]
    assert [r["learning_rate"] for r in rows] == ["0.1", "0.2", "0.3"]  # the parameter that differs
    assert "steps" not in rows[0]  # the same everywhere: not a column
    assert float(rows[0]["final_loss"]) == pytest.approx(2 * 0.9**4 + 0.001)
    assert rows[0]["accuracy"] and "eval.upstream_final_loss" in rows[0]
    assert rows[2]["note"].startswith("ValueError: planned failure at learning_rate=0.3 (cell 1, line 7: raise")
    md = (out / "summary.md").read_text()
    assert md.count("\n| 0") == 3 and "loss_curves.png" in md
    assert (out / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_lines_and_two_jobs(three_runs: dict) -> None:
    printed = three_runs["printed"]
    assert "\r" not in printed
    lines = printed.splitlines()
    done = [line for line in lines if line.startswith("[") and not line.startswith("[start]")]
    assert len(done) == 3
    assert re.fullmatch(r"\[\d/3\] 01-a-[0-9a-f]{8}  completed  \d+\.\d s  loss 1\.8→1\.31  peak 12 MiB",
                        next(line for line in done if "01-a-" in line))
    # --jobs 2: the second run starts before the first one finishes
    first_done = next(i for i, line in enumerate(lines) if line.startswith("[1/3]"))
    assert sum(line.startswith("[start]") for line in lines[:first_done]) == 2
    if not visible_gpus():
        threads = str(max(1, cpu_cores() // 2))
        assert manifests(three_runs["out"])["a"]["env"] == {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def test_resume_skips_completed_and_reruns_failed(three_runs: dict) -> None:
    out = three_runs["out"]
    before = manifests(out)
    code, printed = kit_batch(three_runs["plan"], "--out", out, "--resume")
    assert code == 1
    after = manifests(out)
    for name in ("a", "b"):
        assert after[name]["started_at"] == before[name]["started_at"] and after[name]["resumed"] is True
    starts = [line for line in printed.splitlines() if line.startswith("[start]")]
    assert len(starts) == 1 and before["c"]["run_id"] in starts[0]
    assert re.search(r"^\[\d/3\] 01-a-\w+  completed \(resumed\)", printed, re.M)
    assert after["c"]["status"] == "failed" and after["c"]["started_at"] >= before["c"]["started_at"]
    assert len(summary(out)) == 3


def test_reference_round_trip(three_runs: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(three_runs["out"], out)
    plan = write_plan(three_runs["root"] / "good.yaml", {"runs": yaml_runs(three_runs["plan"])[:2]})
    ref = tmp_path / "ref.json"
    code, printed = kit_batch(plan, "--out", out, "--resume", "--write-reference", ref, "--tolerance-abs", "0.05")
    assert code == 0 and "[start]" not in printed and "2 runs written" in printed
    written = json.loads(ref.read_text())
    device = current_device_type()  # references are kept per device type: cpu here, cuda on a GPU machine
    runs = written["devices"][device]["runs"]
    assert written["format"] == "kit-loss-reference/2" and set(written["devices"]) == {device} and set(runs) == {"a", "b"}
    steps = runs["a"]["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    assert steps[0]["centre"] == pytest.approx(2 * 0.9 + 0.001)
    assert all(s["tolerance"] == pytest.approx(max(0.05, 0.01 * abs(s["centre"]))) for s in steps)

    code, printed = kit_batch(plan, "--out", out, "--resume", "--check-reference", ref)
    assert code == 0 and [r["reference"] for r in summary(out)] == ["pass", "pass"]

    runs["b"]["steps"][2]["centre"] += 0.5
    del runs["a"]
    ref.write_text(json.dumps(written))
    code, printed = kit_batch(plan, "--out", out, "--resume", "--check-reference", ref)
    assert code == 1
    found = manifests(out)
    assert found["a"]["status"] == "completed" and found["a"]["reference"]["status"] == "no reference"
    assert found["a"]["reference"]["detail"] == f"no reference for {device}"
    assert found["b"]["status"] == "failed"
    assert re.match(r"reference check: step 3: loss [\d.]+ is outside the reference band [\d.]+ ± 0\.05",
                    found["b"]["error"]["message"])
    assert "step 3" in summary(out)[1]["note"]


def yaml_runs(plan: Path) -> list[dict]:
    import yaml

    return yaml.safe_load(plan.read_text())["runs"]


def test_dependencies_order_skip_and_fresh_reference(tmp_path: Path) -> None:
    write_notebook(tmp_path / "nb" / "dummy.ipynb")
    plan = write_plan(tmp_path / "deps.yaml", {"defaults": {"steps": 2}, "runs": [
        {"notebook": "nb/dummy.ipynb", "name": "eval", "parameters": {"upstream": "{run:train}"}},
        {"notebook": "nb/dummy.ipynb", "name": "train"},
        {"notebook": "nb/dummy.ipynb", "name": "broken", "parameters": {"fail": True}},
        {"notebook": "nb/dummy.ipynb", "name": "needs_broken", "parameters": {"upstream": "{run:broken}"}},
    ]})
    ref = tmp_path / "ref.json"
    centres = [2 * 0.9**s + 0.001 for s in (1, 2)]
    ref.write_text(json.dumps({"format": "kit-loss-reference/2", "devices": {current_device_type(): {"runs": {"train": {
        "steps": [{"step": s, "centre": c, "tolerance": 0.01} for s, c in zip((1, 2), centres)]}}}}}))
    out = tmp_path / "out"
    code, printed = kit_batch(plan, "--out", out, "--jobs", "2", "--check-reference", ref)
    assert code == 1
    found = manifests(out)
    assert {n: m["status"] for n, m in found.items()} == {
        "eval": "completed", "train": "completed", "broken": "failed", "needs_broken": "skipped"}
    assert found["eval"]["dependencies"] == [found["train"]["run_id"]]
    assert found["eval"]["metrics"]["eval"]["upstream_final_loss"] == found["train"]["final_loss"]
    assert found["eval"]["started_at"] >= found["train"]["ended_at"]
    assert found["train"]["reference"]["status"] == "pass"
    assert found["eval"]["reference"]["status"] == "no reference"
    skipped = found["needs_broken"]
    assert skipped["reason"] == f"dependency {found['broken']['run_id']} failed; this run needs its output"
    assert not (out / skipped["run_id"] / "dummy.ipynb").exists()
    assert [r["status"] for r in summary(out)] == ["completed", "completed", "failed", "skipped"]
    assert re.search(r"^\[\d/4\] 04-needs_broken-[0-9a-f]{8}  skipped  dependency 03-broken-", printed, re.M)
    assert re.search(r"^\[\d/4\] 02-train-[0-9a-f]{8}  completed  .*  reference ok$", printed, re.M)


def test_ctrl_c_marks_interrupted_and_keeps_completed(tmp_path: Path) -> None:
    import psutil

    write_notebook(tmp_path / "nb" / "dummy.ipynb")
    plan = write_plan(tmp_path / "slow.yaml", {"runs": [
        {"notebook": "nb/dummy.ipynb", "name": "fast"},
        {"notebook": "nb/dummy.ipynb", "name": "slow", "parameters": {"sleep_s": 120.0}},
        {"notebook": "nb/dummy.ipynb", "name": "later", "parameters": {"steps": 2}},
    ]})
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    runner = subprocess.Popen([sys.executable, "-m", "kit", "batch", str(plan), "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            logs = list(out.glob("02-slow-*/papermill.log"))
            if logs and "Executing Cell 3" in logs[0].read_text(errors="replace"):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the slow run never started")
        children = psutil.Process(runner.pid).children(recursive=True)
        assert children  # papermill and its kernel
        runner.send_signal(signal.SIGINT)
        printed, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, printed
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    found = manifests(out)
    assert found["fast"]["status"] == "completed"
    assert found["slow"]["status"] == "interrupted" and "interrupted" in found["slow"]["reason"]
    assert "later" not in found
    assert [r["status"] for r in summary(out)] == ["completed", "interrupted", "not started"]
    code, printed = kit_batch(plan, "--out", out, "--resume", "--dry-run")
    assert code == 0 and "01-fast-" in printed and "completed earlier: --resume skips it" in printed
