"""Shared helpers for the ``kit batch`` tests: a tiny pure-Python notebook and plan writers (no tests here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import yaml

PARAMETERS = """\
output_dir = "outputs/dummy"
learning_rate = 0.1
steps = 4
seed = 1
fail = False
sleep_s = 0.0
upstream = None
data_path = None
tag = "x"
"""

BODY = """\
import json
import time
from pathlib import Path

time.sleep(sleep_s)
if fail:
    raise ValueError(f"planned failure at learning_rate={learning_rate}")
trace = [{"step": s, "loss": round(2.0 * (1 - learning_rate) ** s + 0.001 * seed, 6)} for s in range(1, steps + 1)]
upstream_final = None
if upstream:
    upstream_final = json.loads((Path(upstream) / "metrics.json").read_text())["final_loss"]
out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
metrics = {
    "notebook": "dummy", "device": {"type": "cpu", "name": "dummy-cpu", "memory_gb": 1.0}, "seed": seed,
    "steps": steps, "runtime_s": 0.0, "loss_trace": trace, "final_loss": trace[-1]["loss"] if trace else None,
    "peak_memory_mb": 12.5, "data_files": [],
    "metrics": {"accuracy": round(1 - trace[-1]["loss"] / 2, 4), "eval": {"upstream_final_loss": upstream_final}},
    "parameters": {"learning_rate": learning_rate, "steps": steps},
}
(out / "metrics.json").write_text(json.dumps(metrics))
print(f"step {steps}: loss {trace[-1]['loss']}")
"""


def write_notebook(path: Path, parameters: str = PARAMETERS, body: str = BODY) -> Path:
    """A notebook with a ``parameters`` cell and one cell that writes a loss trace to ``output_dir``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def write_plan(path: Path, plan: dict[str, Any]) -> Path:
    """Write ``plan`` as YAML to ``path``."""
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path
