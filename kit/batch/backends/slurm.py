"""``--backend slurm``: each run is a Slurm job submitted through submitit, sized by its plan entry's
``resources`` (default 1 CPU and, on Slurm, 1 GPU). The job runs the same papermill command
(:func:`kit.batch.backends.task.execute`). Slurm jobs share the driver's filesystem (submitit needs it for
its own files), so outputs land in the batch folder directly; submitit's files go to ``<out>/.submitit``.

Settings from the environment: ``KIT_SLURM_PARTITION``, ``KIT_SLURM_TIMEOUT_MIN`` (default 240),
``KIT_SLURM_CLUSTER`` (``slurm``, ``local`` or ``debug``; default: Slurm when ``sbatch`` is found, else
submitit's local executor, which runs each job as a process on this machine).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from kit.batch.backends.base import as_dict, describe_handle_error, resources_of
from kit.batch.plan import RunSpec
from kit.batch.resources import JobSlot
from kit.paths import repo_root
from kit.runtime.redact import is_secret_entry

STOP_GRACE_S = 15.0


class SlurmHandle:
    """A submitit job, read like a :class:`subprocess.Popen`."""

    def __init__(self, job: Any, log_path: Path) -> None:
        self.job = job
        self.log_path = log_path
        self.returncode: int | None = None
        self.result: dict[str, Any] = {}

    def poll(self) -> int | None:
        """The exit code once the job ended, else None."""
        if self.returncode is not None:
            return self.returncode
        if not self.job.done():
            return None
        try:
            self.result = as_dict(self.job.result())
            self.returncode = int(self.result.get("returncode", 1))
        except Exception as exc:  # the job failed outside the notebook (node lost, cancelled, time limit)
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"\nslurm job {self.job.job_id} failed: {describe_handle_error(exc)}\n")
            self.returncode = 1
        return self.returncode

    def wait(self) -> int:
        """Block until the job ends; its exit code."""
        while self.poll() is None:
            time.sleep(0.1)
        assert self.returncode is not None
        return self.returncode

    def kit_stop(self) -> None:
        """Cancel the job (scancel, or SIGINT for a local one) and wait for its notebook process to end."""
        if self.poll() is not None:
            return
        self.job.cancel(check=False)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.returncode is None:
            self.returncode = -15


class SlurmBackend:
    """Submits runs as Slurm jobs (or submitit local jobs); see the module docstring."""

    name = "slurm"

    def __init__(self, cluster: str | None = None) -> None:
        import shutil

        self.cluster = cluster or os.environ.get("KIT_SLURM_CLUSTER") or ("slurm" if shutil.which("sbatch") else "local")
        self.partition = os.environ.get("KIT_SLURM_PARTITION")
        self.timeout_min = int(os.environ.get("KIT_SLURM_TIMEOUT_MIN", "240"))

    def slots(self, jobs: int, runs: int = 0) -> tuple[list[JobSlot], str]:
        """As many jobs queued at once as ``--jobs`` (0: every ready run; Slurm queues them)."""
        count = jobs if jobs > 0 else max(1, runs)
        where = "Slurm" if self.cluster == "slurm" else f"submitit {self.cluster} executor"
        note = f"{where}; {'up to ' + str(jobs) if jobs > 0 else 'every ready run'} submitted at once"
        return [JobSlot(i) for i in range(count)], note

    def start(self, spec: RunSpec, command: list[str], env: dict[str, str], log: IO[bytes]) -> SlurmHandle:
        """Submit the run as a job named after its run id, with its CPUs and GPUs."""
        import submitit

        from kit.batch.backends.task import execute

        wanted = resources_of(spec, default_gpus=1 if self.cluster == "slurm" else 0)
        executor = submitit.AutoExecutor(folder=str(spec.run_dir.parent / ".submitit" / "%j"), cluster=self.cluster)
        options: dict[str, Any] = {"name": spec.run_id, "timeout_min": self.timeout_min, "cpus_per_task": wanted["cpus"],
                                   "tasks_per_node": 1, "nodes": 1}
        if wanted["gpus"]:
            options["gpus_per_node"] = wanted["gpus"]
        if self.partition and self.cluster == "slurm":
            options["slurm_partition"] = self.partition
        executor.update_parameters(**options)
        # submitit pickles the call into <out>/.submitit: secret values must not be in it. They reach the job
        # through the environment sbatch (or the local executor) copies from this process at submit time.
        secrets = {k: v for k, v in env.items() if is_secret_entry(k, v)}
        public = {k: v for k, v in env.items() if k not in secrets}
        with _environment(secrets):
            job = executor.submit(execute, command, public, str(repo_root()), str(spec.run_dir))
        return SlurmHandle(job, Path(log.name))

    def close(self) -> None:
        """Nothing to release (jobs that ended are not kept by submitit)."""


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` in this process's environment for the duration (restored after)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
