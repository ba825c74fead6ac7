"""Run one gpu_check.sh step: its command with its output in a log, stopped after a time limit with everything it
started, papermill kernels included (they run in sessions of their own, which `timeout` does not reach).

  python benchmarks/gpu_step.py LIMIT_S LOG -- COMMAND...     # exit code: the command's, 124 when stopped at LIMIT_S
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_step(limit_s: float, log: Path, command: list[str]) -> int:
    """``command`` with stdout+stderr in ``log``; after ``limit_s`` its whole process tree is stopped (124)."""
    sys.path.insert(0, str(ROOT))
    from kit.batch.processes import stop_tree

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        def stop(signum: int, _frame: object) -> None:  # the step itself was stopped: take the tree down too
            stop_tree(process)
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        deadline = time.monotonic() + limit_s
        try:
            return process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop_tree(process)
            out.write(f"\n[gpu_step] stopped after {limit_s:.0f} s with its process tree\n".encode())
            return 124


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: gpu_step.py LIMIT_S LOG -- COMMAND...", file=sys.stderr)
        return 2
    return run_step(float(argv[0]), Path(argv[1]), argv[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
