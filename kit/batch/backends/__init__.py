"""Where a batch's runs execute: this machine's process pool (``local``, the default), a Ray cluster (``ray``)
or Slurm through submitit (``slurm``). The runner keeps every decision (order, skips, manifests, summary,
``--resume``, Ctrl-C); a backend only starts one run's command and reports when it ended.

A backend hands back, per run, a handle shaped like :class:`subprocess.Popen` for what the runner reads:
``poll()`` (the exit code once done, else None), ``returncode``, ``wait()``; remote handles add
``kit_stop()``, which cancels the task and waits until its notebook process is gone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any, Protocol

from kit.batch.plan import RunSpec
from kit.batch.resources import JobSlot
from kit.errors import KitError

BACKENDS = ("local", "ray", "slurm")
INSTALL_HINT = {
    "ray": "--backend ray needs Ray: pip install -e '.[ray]' (or pip install 'ray[default]>=2.40')",
    "slurm": "--backend slurm needs submitit: pip install -e '.[slurm]' (or pip install submitit)",
}
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


def run_command(spec: RunSpec, executed: Path, parameters_file: Path) -> list[str]:
    """papermill for the run; a run asking for 2+ GPUs goes through ``accelerate launch`` instead
    (:mod:`kit.batch.backends.multi_gpu`). The first word is :data:`PYTHON`, replaced where it runs."""
    from kit.batch.runner import papermill_command

    gpus = int((getattr(spec, "resources", None) or {}).get("gpus", 0))
    if gpus >= 2:
        command = [sys.executable, "-m", "kit.batch.backends.multi_gpu", str(spec.notebook), str(executed),
                   str(parameters_file), "--num-processes", str(gpus)]
    else:
        command = papermill_command(spec, executed, parameters_file)
    return [PYTHON, *command[1:]]


def get_backend(name: str, address: str | None = None) -> Backend:
    """The backend called ``name``; a KitError with the install command when its library is missing."""
    if name == "local":
        from kit.batch.backends.local import LocalBackend

        if address:
            raise KitError("--address is for --backend ray (a Ray cluster's address); the local backend has none")
        return LocalBackend()
    if name not in BACKENDS:
        raise KitError(f"unknown backend '{name}'; choose one of {', '.join(BACKENDS)}")
    module = "ray" if name == "ray" else "submitit"
    try:
        __import__(module)
    except ImportError as exc:
        raise KitError(INSTALL_HINT[name]) from exc
    if name == "ray":
        from kit.batch.backends.ray_cluster import RayBackend

        return RayBackend(address)
    from kit.batch.backends.slurm import SlurmBackend

    if address:
        raise KitError("--address is for --backend ray; Slurm settings come from KIT_SLURM_* variables")
    return SlurmBackend()


def describe_handle_error(exc: BaseException) -> str:
    """One line for an error a remote task raised (its type and first line)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def as_dict(value: Any) -> dict[str, Any]:
    """A task's result as a mapping (an unexpected value becomes an error entry)."""
    return value if isinstance(value, dict) else {"returncode": 1, "error": f"unexpected task result {value!r}"}
