"""How parallel jobs share the machine: one GPU each where there are GPUs, else an equal share of CPU threads.

GPUs are found without importing torch: ``CUDA_VISIBLE_DEVICES`` when set, else ``nvidia-smi -L``.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any


@dataclass
class JobSlot:
    """One of the ``--jobs`` places a run can execute in, with the environment that confines it."""

    number: int
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """``CUDA_VISIBLE_DEVICES=1`` or ``OMP_NUM_THREADS=4`` (empty when nothing is set)."""
        for key in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS"):
            if key in self.env:
                return f"{key}={self.env[key]}"
        return ""


def _nvidia_smi(*args: str) -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


@lru_cache(maxsize=1)
def visible_gpus() -> tuple[str, ...]:
    """The GPU ids a job may use: the entries of ``CUDA_VISIBLE_DEVICES``, else nvidia-smi's indices."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = tuple(part.strip() for part in env.split(",") if part.strip())
        return () if ids and ids[0].startswith("-") else ids
    return tuple(str(i) for i, line in enumerate(_nvidia_smi("-L")) if line.startswith("GPU "))


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def job_slots(jobs: int) -> tuple[list[JobSlot], str]:
    """``jobs`` slots and a one-line description of how they split the GPUs or CPU cores."""
    gpus = visible_gpus()
    if gpus:
        if jobs == 1:
            return [JobSlot(0)], f"1 job, GPU {', '.join(gpus)}"
        slots = [JobSlot(i, {"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]}) for i in range(jobs)]
        note = "" if jobs <= len(gpus) else f" (only {len(gpus)} GPUs: jobs share them)"
        return slots, f"{jobs} jobs, one GPU each{note}"
    threads = max(1, cpu_cores() // jobs)
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return [JobSlot(i, dict(env)) for i in range(jobs)], f"{jobs} job{'s' if jobs > 1 else ''} on CPU, {threads} thread{'s' if threads > 1 else ''} each"


@cache
def detect_device(gpu: str | None = None) -> dict[str, Any]:
    """The device a run had, found cheaply (nvidia-smi or /proc): used when a notebook wrote no ``device``."""
    gpus = visible_gpus()
    if gpus:
        target = gpu if gpu is not None else gpus[0]
        rows = _nvidia_smi("--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits")
        for row in rows:
            index, uuid, name, memory = (part.strip() for part in row.split(",", 3))
            if target in (index, uuid):
                return {"type": "cuda", "name": name, "memory_gb": round(float(memory) / 1024, 2)}
        return {"type": "cuda", "name": None, "memory_gb": None}
    import psutil

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"type": "cpu", "name": name, "memory_gb": round(psutil.virtual_memory().total / 2**30, 2)}
