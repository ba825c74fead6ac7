"""The default backend: each run is a papermill subprocess on this machine, ``--jobs`` at a time, one GPU or
an equal share of the CPU threads each (:func:`kit.batch.resources.job_slots`)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO

from kit.batch.backends.base import PYTHON
from kit.batch.plan import RunSpec
from kit.batch.resources import JobSlot, job_slots
from kit.paths import repo_root


class LocalBackend:
    """Runs on this machine; the handle is the :class:`subprocess.Popen` itself."""

    name = "local"

    def slots(self, jobs: int, runs: int = 0) -> tuple[list[JobSlot], str]:
        """``jobs`` slots splitting the GPUs or CPU cores (``runs`` is unused here)."""
        return job_slots(max(1, jobs))

    def start(self, spec: RunSpec, command: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        """The run's command as a subprocess in its own session (Ctrl-C reaches the runner, not the kernel)."""
        argv = [sys.executable if word == PYTHON else word for word in command]
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **env}, cwd=repo_root(), start_new_session=True)

    def close(self) -> None:
        """Nothing to release."""
