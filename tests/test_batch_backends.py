"""``kit batch --backend ray|slurm`` on CPU: a local Ray cluster (2 CPUs, one per test session) and submitit's
local executor run the same small plan as the local pool, with a failing run, a dependency, a skipped run
and ``--resume``, and give the same summary (timings aside)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_batch_helpers import write_notebook, write_plan

from kit.batch.backends import get_backend
from kit.batch.backends.base import PYTHON, run_command
from kit.batch.backends.task import execute, pack, unpack
from kit.batch.plan import load_plan
from kit.batch.resources import visible_gpus
from kit.cli import main
from kit.errors import KitError

TIMING_COLUMNS = ("wall_s",)


def kit_batch(*args: object) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["batch", *map(str, args)])
    return code, buffer.getvalue()


def manifests(out: Path) -> dict[str, dict]:
    return {m["name"]: m for m in (json.loads(p.read_text()) for p in sorted(out.glob("*/manifest.json")))}


def summary_without_timings(out: Path) -> list[dict[str, str]]:
    with open(out / "summary.csv", encoding="utf-8", newline="") as handle:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def four_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One plan for every backend: a completes, b fails, c reads a's output, d needs b (skipped)."""
    root = tmp_path_factory.mktemp("backends")
    write_notebook(root / "nb" / "dummy.ipynb")
    plan = write_plan(root / "plan.yaml", {"runs": [
        {"notebook": "nb/dummy.ipynb", "name": "a", "parameters": {"learning_rate": 0.2}},
        {"notebook": "nb/dummy.ipynb", "name": "b", "parameters": {"fail": True}, "resources": {"cpus": 1}},
        {"notebook": "nb/dummy.ipynb", "name": "c", "parameters": {"upstream": "{run:a}"}},
        {"notebook": "nb/dummy.ipynb", "name": "d", "parameters": {"upstream": "{run:b}"}},
    ]})
    out = root / "local"
    code, printed = kit_batch(plan, "--out", out, "--jobs", "2")
    assert code == 1, printed
    return {"root": root, "plan": plan, "local": out}


def check_like_local(four_runs: dict, out: Path) -> None:
    found = manifests(out)
    assert {n: m["status"] for n, m in found.items()} == {"a": "completed", "b": "failed", "c": "completed", "d": "skipped"}
    assert found["c"]["metrics"]["eval"]["upstream_final_loss"] == found["a"]["final_loss"]
    assert found["c"]["started_at"] >= found["a"]["ended_at"]
    assert found["b"]["error"]["ename"] == "ValueError"
    assert found["a"]["overhead_s"] == pytest.approx(found["a"]["wall_s"] - found["a"]["notebook_s"], abs=0.01)
    assert (out / found["a"]["run_id"] / "metrics.json").is_file()
    assert summary_without_timings(out) == summary_without_timings(four_runs["local"])


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the session (Ray takes seconds to start): 2 CPUs, no dashboard."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_same_summary_as_local_then_resume(four_runs: dict, ray_cluster) -> None:
    out = four_runs["root"] / "ray"
    code, printed = kit_batch(four_runs["plan"], "--out", out, "--backend", "ray")
    assert code == 1, printed
    assert "Ray cluster: 1 node, 2 CPUs" in printed.splitlines()[0]
    check_like_local(four_runs, out)
    before = manifests(out)
    code, printed = kit_batch(four_runs["plan"], "--out", out, "--backend", "ray", "--resume")
    assert code == 1, printed
    after = manifests(out)
    for name in ("a", "c"):
        assert after[name]["resumed"] is True and after[name]["ended_at"] == before[name]["ended_at"]
    assert after["b"]["status"] == "failed" and after["b"]["started_at"] >= before["b"]["ended_at"]
    assert after["d"]["status"] == "skipped"
    assert sum("(resumed)" in line for line in printed.splitlines()) == 2


def test_ray_copies_outputs_back_when_asked(four_runs: dict, ray_cluster, tmp_path: Path) -> None:
    """KIT_BATCH_COPY_BACK=1: each task returns its run folder as an archive, unpacked by the driver."""
    plan = write_plan(tmp_path / "copy.yaml", {"env": {"KIT_BATCH_COPY_BACK": "1"}, "runs": [
        {"notebook": str(four_runs["root"] / "nb" / "dummy.ipynb"), "name": "a"},
        {"notebook": str(four_runs["root"] / "nb" / "dummy.ipynb"), "name": "c", "parameters": {"upstream": "{run:a}"}},
    ]})
    code, printed = kit_batch(plan, "--out", tmp_path / "out", "--backend", "ray")
    assert code == 0, printed
    found = manifests(tmp_path / "out")
    assert found["c"]["metrics"]["eval"]["upstream_final_loss"] == found["a"]["final_loss"]


def test_ray_stop_ends_the_notebook_process(four_runs: dict, ray_cluster, tmp_path: Path) -> None:
    """What Ctrl-C does to a Ray run: the task is cancelled and takes its notebook process with it."""
    import psutil

    plan = load_plan(four_runs["plan"], tmp_path / "out")
    spec = plan.run("a")
    spec.run_dir.mkdir(parents=True)
    marker = spec.run_dir / "pid"
    code = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    backend = get_backend("ray")
    with open(spec.run_dir / "papermill.log", "wb") as log:
        handle = backend.start(spec, [PYTHON, "-c", code], {}, log)
    deadline = time.time() + 60
    while not marker.exists() or not marker.read_text():
        assert time.time() < deadline and handle.poll() is None, "the task never started"
        time.sleep(0.1)
    pid = int(marker.read_text())
    started = time.perf_counter()
    handle.kit_stop()
    assert handle.returncode is not None and time.perf_counter() - started < 20
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    backend.close()  # a connection it did not open stays open
    assert ray_cluster.is_initialized()


def test_slurm_local_executor_same_summary_as_local(four_runs: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("submitit", reason="submitit is an optional extra: pip install -e '.[slurm]'")
    monkeypatch.setenv("KIT_SLURM_CLUSTER", "local")
    out = four_runs["root"] / "slurm"
    code, printed = kit_batch(four_runs["plan"], "--out", out, "--backend", "slurm", "--jobs", "2")
    assert code == 1, printed
    assert "submitit local executor" in printed.splitlines()[0]
    check_like_local(four_runs, out)
    assert any((out / ".submitit").rglob("*_submitted.pkl"))


def test_missing_library_says_how_to_install(four_runs: dict, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    code = main(["batch", str(four_runs["plan"]), "--backend", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: --backend ray needs Ray: pip install -e '.[ray]' (or pip install 'ray[default]>=2.40')"]


def test_resources_validated_and_two_gpus_use_accelerate(tmp_path: Path) -> None:
    write_notebook(tmp_path / "nb.ipynb")
    for bad in ({"gpu": 1}, {"gpus": -1}, {"cpus": 0}, {"cpus": 1.5}, [1]):
        plan = write_plan(tmp_path / "bad.yaml", {"runs": [{"notebook": "nb.ipynb", "resources": bad}]})
        with pytest.raises(KitError, match=r"runs\[0\] \(nb\): (resources|'resources')"):
            load_plan(plan, tmp_path / "out")
    plan = load_plan(write_plan(tmp_path / "ok.yaml", {"runs": [
        {"notebook": "nb.ipynb", "name": "one"},
        {"notebook": "nb.ipynb", "name": "two", "resources": {"gpus": 2, "cpus": 8}},
    ]}), tmp_path / "out")
    one, two = plan.run("one"), plan.run("two")
    assert one.resources == {} and two.resources == {"gpus": 2, "cpus": 8}
    assert run_command(one, one.run_dir / "x.ipynb", one.run_dir / "p.yaml")[1:3] == ["-m", "kit.batch.papermill_secrets"]
    command = run_command(two, two.run_dir / "x.ipynb", two.run_dir / "p.yaml")
    assert command[0] == PYTHON and command[1:3] == ["-m", "kit.batch.backends.multi_gpu"]
    assert command[-2:] == ["--num-processes", "2"]


def test_task_copies_back_and_ships_upstream(tmp_path: Path) -> None:
    """A worker without the driver's disk: it runs in a folder it creates and returns it packed; an
    upstream run's archive is unpacked before the command starts."""
    upstream = tmp_path / "elsewhere" / "01-a"
    (upstream / "output").mkdir(parents=True)
    (upstream / "output" / "metrics.json").write_text('{"final_loss": 1.5}')
    shipped = {"run_dir": str(tmp_path / "node" / "01-a"), "archive": pack(upstream)}
    run_dir = tmp_path / "node" / "02-b"
    code = (f"import pathlib; src = pathlib.Path({shipped['run_dir']!r}) / 'output' / 'metrics.json'; "
            f"pathlib.Path({str(run_dir)!r}, 'copy.json').write_text(src.read_text()); print('ok')")
    result = execute([PYTHON, "-c", code], {}, str(tmp_path), str(run_dir), [shipped])
    assert result["returncode"] == 0 and result["archive"] is not None
    back = tmp_path / "driver" / "02-b"
    unpack(result["archive"], back)
    assert json.loads((back / "copy.json").read_text()) == {"final_loss": 1.5}
    assert (back / "papermill.log").read_text().strip() == "ok"


@pytest.mark.gpu
@pytest.mark.skipif(len(visible_gpus()) < 2, reason="needs 2+ GPUs: a gpus: 2 entry trains through accelerate launch")
def test_two_gpu_entry_runs_through_accelerate(tiny_model_dir: Path, tmp_path: Path, repo_root: Path) -> None:
    plan = write_plan(tmp_path / "ddp.yaml", {"runs": [{
        "notebook": str(repo_root / "notebooks" / "01_alpaca_sft.ipynb"), "name": "alpaca",
        "resources": {"gpus": 2},
        "parameters": {"model_name": str(tiny_model_dir), "load_in_4bit": False, "max_seq_length": 256,
                       "max_steps": 4, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1},
    }]})
    code, printed = kit_batch(plan, "--out", tmp_path / "out")
    assert code == 0, printed
    m = manifests(tmp_path / "out")["alpaca"]
    log = (tmp_path / "out" / m["run_id"] / "papermill.log").read_text()
    assert "[launch] accelerate launch --multi_gpu --num_processes 2" in log
    assert m["final_loss"] is not None and (Path(m["output_dir"]) / "adapter_model.safetensors").is_file()


@pytest.mark.notebooks
def test_tiny_plan_through_ray(ray_cluster, repo_root: Path, tmp_path: Path) -> None:
    """The real tiny plan (five notebooks on the tiny model) on the local Ray cluster; slow (minutes)."""
    if not (repo_root / ".cache" / "tiny-model").is_dir():
        subprocess.run([sys.executable, "-m", "kit", "tiny-model", str(repo_root / ".cache" / "tiny-model")], check=True)
    code, printed = kit_batch(repo_root / "notebooks" / "batches" / "tiny.yaml", "--out", tmp_path / "out",
                              "--backend", "ray", "--jobs", "1")
    assert code == 0, printed
    found = manifests(tmp_path / "out")
    assert {n: m["status"] for n, m in found.items()} == dict.fromkeys(("alpaca", "medical", "grpo", "dpo", "evaluate"), "completed")
    assert all(found[n]["final_loss"] is not None for n in ("alpaca", "medical", "grpo", "dpo"))  # 05 trains nothing


def test_two_gpu_entry_path_on_cpu_processes(four_runs: dict, tmp_path: Path) -> None:
    """The gpus: 2 path without GPUs: the run is exported and started by accelerate launch as 2 processes
    (gloo on CPU), and its manifest reads like a papermill run's."""
    plan = write_plan(tmp_path / "two.yaml", {"runs": [{
        "notebook": str(four_runs["root"] / "nb" / "dummy.ipynb"), "name": "two", "resources": {"gpus": 2},
        "parameters": {"learning_rate": 0.5, "steps": 3, "tag": "t"},
    }]})
    code, printed = kit_batch(plan, "--out", tmp_path / "out")
    m = manifests(tmp_path / "out")["two"]
    log = (tmp_path / "out" / m["run_id"] / "papermill.log").read_text()
    assert code == 0, printed + log[-2000:]
    assert "[launch] accelerate launch --multi_gpu --num_processes 2" in log and log.count("step 3: loss") == 2  # both processes ran it
    assert m["status"] == "completed" and m["notebook_s"] > 0 and len(m["loss_trace"]) == 3
    assert (tmp_path / "out" / m["run_id"] / "train.py").is_file()


@pytest.mark.parametrize("backend", ["ray", "slurm"])
def test_ctrl_c_on_a_remote_backend(backend: str, four_runs: dict, tmp_path: Path, request, monkeypatch) -> None:
    """SIGINT while a remote run executes: that run is interrupted (its notebook process ends), completed runs
    stay completed and resumable, the run waiting for it is 'not started'; exit 130."""
    import os
    import signal
    import threading

    import psutil

    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    else:
        pytest.importorskip("submitit", reason="submitit is an optional extra: pip install -e '.[slurm]'")
        monkeypatch.setenv("KIT_SLURM_CLUSTER", "local")
    notebook = str(four_runs["root"] / "nb" / "dummy.ipynb")
    plan = write_plan(tmp_path / "slow.yaml", {"runs": [
        {"notebook": notebook, "name": "fast"},
        {"notebook": notebook, "name": "slow", "parameters": {"sleep_s": 120.0}},
        {"notebook": notebook, "name": "later", "parameters": {"upstream": "{run:slow}"}},
    ]})
    out = tmp_path / "out"
    seen: dict[str, list[int]] = {}

    def interrupt_when_slow_runs() -> None:
        deadline = time.time() + 90
        while time.time() < deadline:
            fast = list(out.glob("01-fast-*/manifest.json"))
            logs = list(out.glob("02-slow-*/papermill.log"))
            if (fast and '"completed"' in fast[0].read_text() and logs
                    and "Executing Cell 3" in logs[0].read_text(errors="replace")):
                papermill = [p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]
                seen["kernels"] = [c.pid for p in papermill for c in [p, *p.children(recursive=True)]]
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=interrupt_when_slow_runs, daemon=True)
    watcher.start()
    code, printed = kit_batch(plan, "--out", out, "--backend", backend)
    watcher.join(5)
    assert code == 130, printed
    found = manifests(out)
    assert found["fast"]["status"] == "completed"
    assert found["slow"]["status"] == "interrupted" and "interrupted" in found["slow"]["reason"]
    assert [r["status"] for r in summary_without_timings(out)] == ["completed", "interrupted", "not started"]
    assert seen["kernels"]
    time.sleep(1)
    alive = [pid for pid in seen["kernels"] if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, "the notebook (papermill or its kernel) outlived the interrupted batch"


def test_dry_run_shows_resources(four_runs: dict) -> None:
    code, printed = kit_batch(four_runs["plan"], "--out", four_runs["root"] / "dry", "--dry-run", "--backend", "ray")
    assert code == 0 and printed.count("    resources: cpus=1") == 1  # run b; nothing started, not even Ray
