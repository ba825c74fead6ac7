"""Stopping a notebook run's process tree (papermill, its kernel, anything the kernel started)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def stop_tree(process: subprocess.Popen[bytes], force: Callable[[], bool] = lambda: False, grace_s: float = 5.0) -> None:
    """SIGTERM the process and its descendants, SIGKILL what is left after ``grace_s`` (at once when ``force()``
    turns true, e.g. on a second Ctrl-C), then reap the process."""
    import psutil

    try:
        parent = psutil.Process(process.pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        procs = []
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + grace_s
    alive = procs
    while alive and not force() and time.monotonic() < deadline:
        _, alive = psutil.wait_procs(alive, timeout=0.2)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()
