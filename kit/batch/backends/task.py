"""What a remote worker (a Ray task or a Slurm job) does for one run: run its command, stop it cleanly when
cancelled, and pack the run folder when the driver cannot see the worker's disk.

The driver creates the run folder before it submits. A worker that does not find it is on a machine without
the shared filesystem: it creates the folder, runs there, and returns the folder as a tar archive, which the
driver unpacks in place (``KIT_BATCH_COPY_BACK=1`` forces this, to try it on one machine). Upstream runs'
archives travel with the task, so a run that reads ``{run:NAME}`` finds that output on its own node.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from kit.batch.backends.base import PYTHON

COPY_BACK_ENV = "KIT_BATCH_COPY_BACK"


def pack(folder: Path) -> bytes:
    """The folder as an uncompressed tar archive (paths relative to it)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(str(folder), arcname=".")
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Extract an archive made by :func:`pack` into ``folder`` (member paths may not leave it)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        archive.extractall(str(folder), filter="data")


def _stop(process: subprocess.Popen[bytes]) -> None:
    from kit.batch.processes import stop_tree

    stop_tree(process)


def execute(command: list[str], env: dict[str, str], cwd: str, run_dir: str,
            upstream: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run one run's ``command`` on this machine; returns ``{returncode, seconds, host, archive}``.

    ``archive`` is the packed run folder when this machine did not share the driver's disk, else None.
    Cancellation (KeyboardInterrupt, which Ray and submitit raise) terminates the notebook and its kernel.
    """
    import socket

    folder = Path(run_dir)
    copy_back = not folder.is_dir() or (env.get(COPY_BACK_ENV) or os.environ.get(COPY_BACK_ENV, "")) == "1"
    for item in upstream or []:
        if item.get("archive") is not None and not Path(item["run_dir"]).is_dir():
            unpack(item["archive"], Path(item["run_dir"]))
    folder.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable if word == PYTHON else word for word in command]
    started = time.perf_counter()
    with open(folder / "papermill.log", "wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env}, cwd=cwd, start_new_session=True)
        try:
            while process.poll() is None:  # a loop, not wait(): Ray's cancel interrupts between bytecodes only
                time.sleep(0.05)
            code = process.returncode
        except BaseException:  # cancelled: leave no kernel behind
            _stop(process)
            raise
    result: dict[str, Any] = {"returncode": code, "seconds": round(time.perf_counter() - started, 3),
                              "host": socket.gethostname(), "run_dir": run_dir, "archive": None}
    if copy_back:
        result["archive"] = pack(folder)
    return result


def execute_after(command: list[str], env: dict[str, str], cwd: str, run_dir: str, *upstream: dict[str, Any]) -> dict[str, Any]:
    """:func:`execute` with the upstream runs' results as separate arguments: Ray resolves each one (a task
    dependency) before the task starts."""
    return execute(command, env, cwd, run_dir, list(upstream))
