"""``--backend ray``: each run is a Ray task asking for its plan entry's ``resources`` (default 1 CPU, and 1 GPU
when the cluster has GPUs). The task runs the same papermill command on whichever node Ray picks
(:func:`kit.batch.backends.task.execute`); the results of the runs it reads through ``{run:NAME}`` are its
arguments, so Ray orders them and ships their output to nodes without the shared filesystem.

``--address`` is passed to ``ray.init`` (``auto``, ``ray://head:10001``...); without it an existing
``RAY_ADDRESS`` is used, else Ray starts a cluster on this machine. A connection already open in this
process (``ray.init`` in a test or a notebook) is reused and left open.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any

from kit.batch.backends.base import as_dict, describe_handle_error, resources_of
from kit.batch.plan import RunSpec
from kit.batch.resources import JobSlot
from kit.paths import repo_root

STOP_GRACE_S = 15.0


class RayHandle:
    """A submitted Ray task, read like a :class:`subprocess.Popen`."""

    def __init__(self, ref: Any, run_dir: Path, log_path: Path) -> None:
        self.ref = ref
        self.run_dir = run_dir
        self.log_path = log_path
        self.returncode: int | None = None
        self.result: dict[str, Any] = {}

    def _collect(self, timeout: float | None) -> int | None:
        import ray
        from ray.exceptions import GetTimeoutError, TaskCancelledError

        try:
            value = ray.get(self.ref, timeout=timeout)
        except GetTimeoutError:
            return None
        except TaskCancelledError:
            self.returncode = -15
            return self.returncode
        except Exception as exc:  # the task itself failed (worker died, import error...): keep why in the log
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"\nray task failed: {describe_handle_error(exc)}\n")
            self.returncode = 1
            return self.returncode
        self.result = as_dict(value)
        archive = self.result.pop("archive", None)
        if archive is not None:
            from kit.batch.backends.task import unpack

            unpack(archive, self.run_dir)  # copied back from a node without the shared filesystem
        self.returncode = int(self.result.get("returncode", 1))
        return self.returncode

    def poll(self) -> int | None:
        """The exit code once the task ended, else None (never blocks)."""
        if self.returncode is not None:
            return self.returncode
        import ray

        ready, _ = ray.wait([self.ref], timeout=0)
        return self._collect(None) if ready else None

    def wait(self) -> int:
        """Block until the task ends; its exit code."""
        while self.poll() is None:
            time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode

    def kit_stop(self) -> None:
        """Cancel the task: the worker gets KeyboardInterrupt and ends the notebook; forced after a grace period."""
        import ray

        if self.poll() is not None:
            return
        ray.cancel(self.ref, force=False)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.returncode is None:
            ray.cancel(self.ref, force=True)
            self._collect(STOP_GRACE_S)
            if self.returncode is None:
                self.returncode = -9


class RayBackend:
    """Submits runs as Ray tasks; see the module docstring."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        import ray

        self._opened = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": address} if address else {}
            ray.init(log_to_driver=False, configure_logging=False, **kwargs)
            self._opened = True
        self._remote = ray.remote(max_retries=0)(_task())
        self._refs: dict[str, Any] = {}
        resources = ray.cluster_resources()
        self.cpus = int(resources.get("CPU", 0))
        self.gpus = int(resources.get("GPU", 0))
        self.nodes = sum(1 for node in ray.nodes() if node.get("Alive"))

    def slots(self, jobs: int, runs: int = 0) -> tuple[list[JobSlot], str]:
        """As many runs at once as ``--jobs`` (0: every ready run; Ray queues them by their resources)."""
        count = jobs if jobs > 0 else max(1, runs)
        note = (f"Ray cluster: {self.nodes} node{'s' if self.nodes != 1 else ''}, {self.cpus} CPUs, {self.gpus} GPUs; "
                f"{'up to ' + str(jobs) if jobs > 0 else 'every ready run'} submitted at once")
        return [JobSlot(i) for i in range(count)], note

    def start(self, spec: RunSpec, command: list[str], env: dict[str, str], log: IO[bytes]) -> RayHandle:
        """Submit the run's task with its resources; the tasks of its upstream runs are its arguments."""
        wanted = resources_of(spec, default_gpus=1 if self.gpus else 0)
        upstream = [self._refs[name] for name in spec.dependencies if name in self._refs]
        ref = self._remote.options(num_cpus=wanted["cpus"], num_gpus=wanted["gpus"], name=spec.run_id).remote(
            command, env, str(repo_root()), str(spec.run_dir), *upstream
        )
        self._refs[spec.name] = ref
        return RayHandle(ref, spec.run_dir, Path(log.name))

    def close(self) -> None:
        """Disconnect when this backend opened the connection."""
        import ray

        if self._opened and ray.is_initialized():
            ray.shutdown()


def _task() -> Any:
    from kit.batch.backends.task import execute_after

    return execute_after
