"""The GPU proof's wiring, checked on CPU: train_speed.py runs its small case end to end, gpu_check.sh --dry-run
validates every step's command (probe, shapes, both speed runs, the GPU plan, test_gpu collection) and leaves at
most 7 files in $OUT; its helpers keep weights out of what comes back, pick only missing extra wheels, and stop a
step's whole process tree (a papermill kernel runs in a session of its own).
The dress rehearsal (gpu_check.sh --rehearse, several GB) is not part of the test command."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from types import ModuleType

import psutil

ROOT = Path(__file__).resolve().parent.parent


def _benchmark(name: str) -> ModuleType:
    """A module of benchmarks/ (scripts, not a package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_speed_smoke_compares_kit_and_plain(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_speed.py"), "--smoke",
                           "--model", str(tiny_model_dir), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"kit_lora16", "plain_lora16"}
    for result in report["results"].values():
        assert result["tokens_per_s"] > 0 and result["tokens"] == 2 * 64 * 2  # batch x seq len x measured steps
        assert result["measured_steps"] == 2 and result["warmup_steps"] == 1
        assert result["memory_kind"] == "rss" and result["peak_rss_mb"] > 0
        assert result["mfu_formula"].startswith("tokens/s x (6 x ") and result["mfu"] > 0
    assert report["complete"] and report["wall_s"] > 0
    processor = report["host"]["processor"]
    assert processor["cpu_capability"] and processor["cuda"] is False and "avx512_bf16" in processor
    assert report["versions"]["torch"] and report["versions"]["trl"]
    assert report["dtype"]["asked"] == "float32" and "as asked" in report["dtype"]["reason"]
    ratio = report["ratios"]["lora16"]
    kit, plain = report["results"]["kit_lora16"], report["results"]["plain_lora16"]
    assert ratio["tokens_per_s_ratio"] == round(kit["tokens_per_s"] / plain["tokens_per_s"], 3)
    assert ratio["peak_memory_ratio"] == round(kit["peak_memory_mb"] / plain["peak_memory_mb"], 3)


def test_gpu_check_dry_run_checks_every_step(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env={**os.environ, "OUT": str(out), "GPU_CHECK_WORK": str(work)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] is True and summary["complete"] is True
    assert [s["step"] for s in summary["steps"]] == ["probe", "shapes", "speed_0.5b", "plan", "test_gpu", "methods",
                                                       "speed_1.5b"]
    assert all(s["status"] == "ok" for s in summary["steps"]), summary
    assert summary["caps_sum_s"] <= summary["budget_s"] <= 480  # the GPU steps fit the time
    assert sum(summary["caps"].values()) == summary["caps_sum_s"]
    # What comes home: at most 7 files at the top of $OUT, no folders, the logs in one small archive.
    names = sorted(p.name for p in out.iterdir())
    assert all((out / n).is_file() for n in names) and len(names) <= 7, names
    assert {"summary.json", "gpu_check.log", "probe.json", "logs.tar.gz"} <= set(names)
    probe = json.loads((out / "probe.json").read_text())
    assert probe["transformers"] and probe["trl"] and probe["unsloth"] and probe["problems"] == []
    with tarfile.open(out / "logs.tar.gz") as tar:
        members = set(tar.getnames())
    assert {"logs/probe.log", "logs/test_gpu.log", "logs/plan.log", "logs/speed_1.5b.log"} <= members
    assert "tests/test_gpu.py" in (work / "logs" / "test_gpu.log").read_text()
    assert "6 runs" in (work / "logs" / "plan.log").read_text()
    speed = json.loads((work / "logs" / "speed_1.5b.log").read_text())
    assert speed["dry_run"] and speed["config"]["seq_len"] == 1024 and speed["config"]["dtype"] == "auto"
    assert "$OUT" not in (out / "gpu_check.log").read_text() and str(work) in (out / "gpu_check.log").read_text()


def test_gpu_check_without_wheels_fails_in_one_line(tmp_path: Path) -> None:
    """Item 5: without .whl/ a GPU run would silently test the machine's own packages; it must stop at once."""
    tree = tmp_path / "tree"
    (tree / "benchmarks").mkdir(parents=True)
    for name in ("gpu_check.sh", "gpu_publish.py", "gpu_step.py", "gpu_extras.py"):
        (tree / "benchmarks" / name).write_bytes((ROOT / "benchmarks" / name).read_bytes())
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(tree / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OUT": str(out), "GPU_CHECK_WORK": str(tmp_path / "work"),
                                            "PYTHON": sys.executable})
    assert proc.returncode == 1
    fail = [line for line in proc.stdout.splitlines() if "FAIL" in line]
    assert len(fail) == 1 and "no .whl/*.whl" in fail[0] and "gpu_wheels.sh" in fail[0], proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == [{**summary["steps"][0], "step": "wheels", "status": "failed"}]


def test_publish_keeps_weights_out_and_at_most_7_files(tmp_path: Path) -> None:
    publish = _benchmark("gpu_publish").publish

    work, out = tmp_path / "work", tmp_path / "out"
    run = work / "plan" / "01-alpaca-abc" / "output"
    run.mkdir(parents=True)
    (work / "logs").mkdir()
    (work / "logs" / "probe.log").write_text("probe\n")
    (work / "summary.jsonl").write_text('{"step": "probe", "status": "ok"}\n')
    (work / "meta.json").write_text('{"mode": "gpu", "budget_s": 480}')
    (work / "probe.json").write_text('{"device": "NVIDIA H200", "torch": "2.11.0"}')
    (work / "speed_0.5b.json").write_text("{}")
    (work / "plan" / "summary.md").write_text("| run |\n")
    (run / "metrics.json").write_text("{}")
    (run.parent / "01_alpaca_sft.ipynb").write_text("{}")
    (run / "adapter_model.safetensors").write_bytes(os.urandom(1 << 20))
    (run / "adapter_config.json").write_text("{}")
    (run / "big.log").write_bytes(b"x" * (5 << 20))
    (run / "checkpoint-2").mkdir()
    (run / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (work / "site" / "pkg").mkdir(parents=True)
    (work / "site" / "pkg" / "RECORD.txt").write_text("x")
    names = publish(work, out, final=True, seconds=12)
    assert names == sorted(["summary.json", "probe.json", "speed_0.5b.json", "plan_summary.md", "logs.tar.gz"])
    with tarfile.open(out / "logs.tar.gz") as tar:
        members = set(tar.getnames())
    assert members == {"logs/probe.log", "summary.jsonl", "meta.json", "probe.json", "speed_0.5b.json",
                       "plan/summary.md", "plan/01-alpaca-abc/output/metrics.json", "plan/01-alpaca-abc/01_alpaca_sft.ipynb"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["gpu"] == "NVIDIA H200" and summary["complete"] and summary["seconds"] == 12
    assert summary["steps"] == [{"step": "probe", "status": "ok"}]


def test_extras_are_picked_only_where_missing(tmp_path: Path) -> None:
    missing_wheels = _benchmark("gpu_extras").missing_wheels

    for name, module in (("pytest-9.2.0-py3-none-any.whl", "pytest/__init__.py"),
                         ("notinstalledanywhere-1.0-py3-none-any.whl", "notinstalledanywhere/__init__.py")):
        with zipfile.ZipFile(tmp_path / name, "w") as whl:
            whl.writestr(module, "")
            whl.writestr(name.split("-")[0] + "-1.0.dist-info/RECORD", "")
    assert [p.name for p in missing_wheels(tmp_path)] == ["notinstalledanywhere-1.0-py3-none-any.whl"]


def test_step_stops_children_in_their_own_session(tmp_path: Path) -> None:
    """A `timeout` that kills kit batch leaves papermill kernels (own sessions) running; gpu_step.py must not."""
    pid_file = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; "
              "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True); "
              f"open({str(pid_file)!r}, 'w').write(str(c.pid)); time.sleep(60)")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_step.py"), "3", str(tmp_path / "step.log"),
                           "--", sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 124 and time.monotonic() - start < 30
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and psutil.pid_exists(child) and psutil.Process(child).status() != "zombie":
        time.sleep(0.1)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
    assert "stopped after 3 s" in (tmp_path / "step.log").read_text()
