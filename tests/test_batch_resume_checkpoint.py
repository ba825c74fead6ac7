"""``kit batch --resume`` continues an interrupted run from its newest checkpoint instead of starting over."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from test_batch_helpers import write_notebook, write_plan

from kit.cli import main

PARAMETERS = """\
output_dir = "outputs/ckpt"  # where checkpoints and metrics go
resume_from_checkpoint = None  # None, "latest" or a checkpoint folder
stop_file = ""  # while this file exists, the run dies after step 3
steps = 6  # steps to train
"""

# A stand-in for trainer.train(): a checkpoint every 2 steps, resumable through kit.training.config.resolve_checkpoint.
BODY = """\
import json
from pathlib import Path

from kit.training.config import resolve_checkpoint

out = Path(output_dir)
checkpoint = resolve_checkpoint(resume_from_checkpoint, out)
start = json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"] if checkpoint else 0
done = []
for step in range(start + 1, steps + 1):
    done.append(step)
    if step % 2 == 0:
        (out / f"checkpoint-{step}").mkdir(parents=True, exist_ok=True)
        (out / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if step == 3 and stop_file and Path(stop_file).exists():
        raise RuntimeError("runtime lost after step 3")
trace = [{"step": s, "loss": 1.0 / s} for s in range(1, steps + 1)]
(out / "metrics.json").write_text(json.dumps({"loss_trace": trace, "final_loss": trace[-1]["loss"],
                                              "metrics": {"first_step_this_attempt": done[0]}}))
"""


def _batch(*args: object) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["batch", *map(str, args)])
    return code, buffer.getvalue()


def test_resume_continues_from_the_last_checkpoint(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    stop.write_text("x")
    notebook = write_notebook(tmp_path / "nb" / "train.ipynb", PARAMETERS.replace('stop_file = ""', f'stop_file = "{stop}"'),
                              BODY)
    plan = write_plan(tmp_path / "plan.yaml", {"runs": [{"notebook": str(notebook), "name": "train"}]})
    out = tmp_path / "out"

    code, _ = _batch(plan, "--out", out)
    assert code == 1
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "failed"
    assert (run_dir / "output" / "checkpoint-2").is_dir() and not (run_dir / "output" / "checkpoint-4").exists()

    stop.unlink()  # the machine is back
    code, _ = _batch(plan, "--out", out, "--resume")
    assert code == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["resume_from_checkpoint"] == "latest"
    assert manifest["metrics"]["first_step_this_attempt"] == 3  # continued after checkpoint-2, not from step 1
    assert "resume_from_checkpoint: latest" in (run_dir / "parameters.yaml").read_text()
    assert (run_dir / "output" / "checkpoint-6").is_dir()
    executed = json.loads((run_dir / "train.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "[resume] continuing from" in printed and "checkpoint-2" in printed


def test_without_resume_the_run_starts_over(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb" / "train.ipynb", PARAMETERS, BODY)
    plan = write_plan(tmp_path / "plan.yaml", {"runs": [{"notebook": str(notebook), "name": "train"}]})
    out = tmp_path / "out"
    assert _batch(plan, "--out", out)[0] == 0
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    (run_dir / "output" / "stale.txt").write_text("old")
    assert _batch(plan, "--out", out)[0] == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "resume_from_checkpoint" not in manifest
    assert manifest["metrics"]["first_step_this_attempt"] == 1
    assert not (run_dir / "output" / "stale.txt").exists()
