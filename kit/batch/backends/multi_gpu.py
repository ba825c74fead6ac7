"""A plan entry with ``resources: {gpus: N}``, N >= 2: one run trained by N processes through
``accelerate launch`` (DDP), instead of one papermill kernel.

``python -m kit.batch.backends.multi_gpu NOTEBOOK EXECUTED PARAMETERS.yaml --num-processes N`` exports the
notebook with :mod:`kit.notebooks.export_script` next to ``EXECUTED`` (``train.py``), passes the run's parameters as
``--name value`` options, and leaves a copy of the notebook at ``EXECUTED`` whose papermill metadata
carries the duration and whether it failed, so the runner's manifest reads it as it reads papermill's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def option_values(parameters: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """``--name value`` words the exported script reads back to the same values (text for text defaults,
    else a Python literal)."""
    words: list[str] = []
    for name, value in parameters.items():
        words += [f"--{name}", value if isinstance(defaults.get(name), str) and isinstance(value, str) else repr(value)]
    return words


def launch_command(script: Path, num_processes: int, options: list[str]) -> list[str]:
    """``accelerate launch --multi_gpu`` with N processes (on a machine without GPUs it uses gloo on CPU)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script), *options]


def _mark_executed(notebook: Path, executed: Path, seconds: float, failed: bool) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    nb.setdefault("metadata", {})["papermill"] = {"duration": round(seconds, 3), "exception": failed,
                                                  "launcher": "accelerate launch"}
    executed.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Export, launch, record; the exit code is accelerate's."""
    import yaml

    from kit.batch.papermill_secrets import resolve
    from kit.notebooks.export_script import export_script
    from kit.notebooks.files import notebook_parameters

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("executed", type=Path)
    parser.add_argument("parameters", type=Path)
    parser.add_argument("--num-processes", type=int, required=True)
    args = parser.parse_args(argv)
    script = args.executed.with_name("train.py")
    text, notes = export_script(args.notebook, script.name)
    script.write_text(text, encoding="utf-8")
    for note in notes:
        print(f"[export] {note}", flush=True)
    parameters = yaml.safe_load(args.parameters.read_text(encoding="utf-8")) or {}
    defaults = notebook_parameters(args.notebook)
    command = launch_command(script, args.num_processes, option_values(resolve(parameters), defaults))
    shown = launch_command(script, args.num_processes, option_values(parameters, defaults))  # secrets as markers
    print("[launch] accelerate launch " + " ".join(shown[3:]), flush=True)
    started = time.perf_counter()
    code = subprocess.call(command)
    _mark_executed(args.notebook, args.executed, time.perf_counter() - started, code != 0)
    if shutil.which("nvidia-smi") is None:
        print("[launch] no nvidia-smi here: the processes trained on CPU (gloo)", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
