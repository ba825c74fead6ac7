"""What every backend shares: the :class:`Backend` and :class:`Handle` shapes, the command one run executes
(papermill, or ``accelerate launch`` for 2+ GPUs) and the helpers the remote backends use."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any, Protocol

from kit.batch.plan import RunSpec
from kit.batch.resources import JobSlot
from kit.paths import repo_root

# The command's first word on the machine that runs it: that machine's Python, not the driver's.
PYTHON = "{python}"


class Handle(Protocol):
    """The part of :class:`subprocess.Popen` the runner uses."""

    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


class Backend(Protocol):
    """Starts runs somewhere; see the module docstring."""

    name: str

    def slots(self, jobs: int, runs: int = 0) -> tuple[list[JobSlot], str]:
        """How many of the plan's ``runs`` may execute at once (``jobs``; 0: as many as the backend takes),
        each slot's environment, and a one-line note for the batch header."""
        ...

    def start(self, spec: RunSpec, command: list[str], env: dict[str, str], log: IO[bytes]) -> Handle:
        """Start ``command`` for ``spec`` with ``env`` added to the machine's environment, output to ``log``."""
        ...

    def close(self) -> None:
        """Release what the backend holds (a Ray connection it opened)."""
        ...


def resources_of(spec: RunSpec, default_gpus: int = 0) -> dict[str, int]:
    """The run's ``resources`` with defaults filled in: 1 CPU, ``default_gpus`` GPUs."""
    given = dict(getattr(spec, "resources", None) or {})
    return {"cpus": int(given.get("cpus", 1)), "gpus": int(given.get("gpus", default_gpus))}

KERNEL_START_TIMEOUT_S = 300


def papermill_command(spec: RunSpec, executed: Path, parameters_file: Path) -> list[str]:
    """The papermill invocation for one run (kernel python3, working directory the repository root)."""
    return [
        sys.executable, "-m", "kit.batch.papermill_secrets", str(spec.notebook), str(executed), "-f", str(parameters_file),
        "-k", "python3", "--cwd", str(repo_root()), "--no-progress-bar", "--log-output",
        # papermill's 60 s kernel start limit fails runs on a busy 2-core machine (a fresh venv's first imports
        # next to a Ray cluster took longer): a slow start is not a failed run.
        "--start-timeout", str(KERNEL_START_TIMEOUT_S),
    ]


def run_command(spec: RunSpec, executed: Path, parameters_file: Path) -> list[str]:
    """papermill for the run; a run asking for 2+ GPUs goes through ``accelerate launch`` instead
    (:mod:`kit.batch.backends.multi_gpu`). The first word is :data:`PYTHON`, replaced where it runs."""
    gpus = int((getattr(spec, "resources", None) or {}).get("gpus", 0))
    if gpus >= 2:
        command = [sys.executable, "-m", "kit.batch.backends.multi_gpu", str(spec.notebook), str(executed),
                   str(parameters_file), "--num-processes", str(gpus)]
    else:
        command = papermill_command(spec, executed, parameters_file)
    return [PYTHON, *command[1:]]


def describe_handle_error(exc: BaseException) -> str:
    """One line for an error a remote task raised (its type and first line)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def as_dict(value: Any) -> dict[str, Any]:
    """A task's result as a mapping (an unexpected value becomes an error entry)."""
    return value if isinstance(value, dict) else {"returncode": 1, "error": f"unexpected task result {value!r}"}
