"""Execute a plan's runs through papermill, each in its own subprocess, N at a time, in dependency order.

A failed run is recorded and the batch goes on (runs that depend on it are skipped with the reason).
Ctrl-C or SIGTERM stops launching, terminates the running notebooks (their kernels too), marks them
``interrupted``, writes the summary and exits 130; completed runs stay intact for ``--resume``, which
skips every run whose folder holds a ``completed`` manifest with the same hash.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kit.batch.backends.base import Backend, run_command
from kit.batch.manifest import (
    data_files,
    display_path,
    failure_cause,
    git_info,
    log_tail,
    notebook_outcome,
    package_versions,
    parameters_sha256,
    read_json,
    redact_env,
    utc_now,
    write_json,
)
from kit.batch.papermill_secrets import split_secrets
from kit.batch.plan import Plan, RunSpec
from kit.batch.processes import stop_tree
from kit.batch.reference import check_trace
from kit.batch.report import plot_loss_curves, progress_line, write_summary
from kit.batch.resources import JobSlot, detect_device
from kit.runtime.redact import environment_secrets, redact, remember_secrets, secret_values

POLL_S = 0.05
FINAL_STATUSES = ("completed", "failed", "skipped", "interrupted")


@dataclass
class _Active:
    spec: RunSpec
    slot: JobSlot
    process: subprocess.Popen[bytes]  # or a remote backend's handle shaped like it
    log: IO[bytes]
    manifest: dict[str, Any]
    started: float  # perf_counter
    started_epoch: float


@dataclass
class BatchResult:
    """What a batch ended with: one manifest per run (plan order), whether it was interrupted, the exit code."""

    manifests: list[dict[str, Any]]
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """130 when interrupted, 1 when a run failed or was skipped, else 0."""
        if self.interrupted:
            return 130
        return 1 if any(m["status"] != "completed" for m in self.manifests) else 0


# Headless kernels print lines, not bars: notebooks check KIT_HEADLESS; tqdm (>= 4.66) and datasets read the others.
HEADLESS_ENV = {"KIT_HEADLESS": "1", "TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}




def completed_manifest(spec: RunSpec) -> dict[str, Any] | None:
    """The manifest of an earlier completed run with the same hash in this run's folder, if any."""
    manifest = read_json(spec.run_dir / "manifest.json")
    if manifest and manifest.get("status") == "completed" and manifest.get("hash") == spec.hash:
        return manifest
    return None


class BatchRunner:
    """Runs a :class:`~kit.batch.plan.Plan`; ``run()`` returns a :class:`BatchResult`."""

    def __init__(
        self,
        plan: Plan,
        *,
        jobs: int = 1,
        resume: bool = False,
        reference: dict[str, Any] | None = None,
        echo: Callable[[str], None] | None = None,
        backend: Backend | None = None,
    ) -> None:
        from kit.batch.backends.local import LocalBackend

        self.plan = plan
        self.backend = backend or LocalBackend()
        self.jobs = jobs
        self.resume = resume
        self.reference = reference
        self.echo = echo or (lambda line: print(line, flush=True))
        self._stop = False
        self._done = 0
        self._by_name = {s.name: s for s in plan.runs}

    # -- manifests -------------------------------------------------------------------------------------
    def _base_manifest(self, spec: RunSpec, status: str) -> dict[str, Any]:
        return {
            "run_id": spec.run_id,
            "name": spec.name,
            "index": spec.index,
            "plan": str(self.plan.path),
            "status": status,
            "reason": None,
            "resumed": False,
            "hash": spec.hash,
            "dependencies": [self._by_name[d].run_id for d in spec.dependencies],
            "notebook": {"path": display_path(spec.notebook), "sha256": spec.notebook_sha256},
            "executed_notebook": None,
            "parameters": spec.parameters,
            "parameters_sha256": parameters_sha256(spec.parameters),
            "parameters_written": spec.written,
            "output_dir": None if spec.output_dir is None else str(spec.output_dir),
            "env": redact_env(self.plan.env),
            "git": git_info(),
            "versions": package_versions(),
            "device": None,
            "seed": spec.parameters.get("seed", spec.notebook_defaults.get("seed")),
            "data_files": [],
            "data_files_source": None,
            "started_at": None,
            "ended_at": None,
            "wall_s": None,
            "notebook_s": None,
            "overhead_s": None,
            "peak_memory_mb": None,
            "final_loss": None,
            "loss_trace": [],
            "metrics": {},
            "warning": None,
            "error": None,
            "reference": None,
        }

    def _apply_reference(self, manifest: dict[str, Any]) -> None:
        if self.reference is None:
            manifest["reference"] = None
            return
        if manifest["status"] != "completed":
            return
        status, detail = check_trace(manifest.get("loss_trace") or [], self.reference.entry(manifest["name"], manifest))
        manifest["reference"] = {"status": status, "detail": detail}
        if status == "fail":
            manifest["status"] = "failed"
            manifest["error"] = {"message": f"reference check: {detail}"}

    def _record(self, manifest: dict[str, Any], results: dict[str, dict[str, Any]], write: bool = True) -> None:
        manifest = redact(manifest)  # by name and by value: what the summary and the files show
        results[manifest["name"]] = manifest
        if write:
            write_json(self._by_name[manifest["name"]].run_dir / "manifest.json", manifest)
        self._done += 1
        self.echo(progress_line(self._done, len(self.plan.runs), manifest))

    # -- launching and finishing -----------------------------------------------------------------------
    def _resumes_from_checkpoint(self, spec: RunSpec) -> bool:
        """``--resume`` on an unfinished run of the same hash whose notebook takes ``resume_from_checkpoint``
        (and whose plan does not set it): it continues from its newest checkpoint instead of starting over."""
        earlier = read_json(spec.run_dir / "manifest.json") if self.resume else None
        return bool(earlier and earlier.get("hash") == spec.hash and "resume_from_checkpoint" in spec.notebook_defaults
                    and "resume_from_checkpoint" not in spec.written)

    def _launch(self, spec: RunSpec, slot: JobSlot) -> _Active | dict[str, Any]:
        resume = self._resumes_from_checkpoint(spec)
        _clear_run_dir(spec.run_dir, keep=spec.output_dir if resume else None)
        if spec.output_dir is not None:
            spec.output_dir.mkdir(parents=True, exist_ok=True)
        import yaml

        parameters_file = spec.run_dir / "parameters.yaml"
        parameters = {**spec.parameters, "resume_from_checkpoint": "latest"} if resume else spec.parameters
        parameters, secret_env = split_secrets(parameters)  # secret parameters travel in the environment only
        parameters_file.write_text(yaml.safe_dump(parameters, allow_unicode=True, sort_keys=False), encoding="utf-8")
        executed = spec.run_dir / spec.notebook.name
        env = {**slot.env, **HEADLESS_ENV, **self.plan.env, **secret_env}  # added where the run executes
        manifest = self._base_manifest(spec, "running")
        manifest["started_at"] = utc_now()
        if resume:
            manifest["resume_from_checkpoint"] = "latest"
        manifest["env"] = redact_env({**slot.env, **self.plan.env})
        write_json(spec.run_dir / "manifest.json", manifest)
        log = open(spec.run_dir / "papermill.log", "wb")  # closed in _finish
        started, started_epoch = time.perf_counter(), time.time()
        try:
            process = self.backend.start(spec, run_command(spec, executed, parameters_file), env, log)
        except OSError as exc:
            log.close()
            manifest.update(status="failed", ended_at=utc_now(), error={"message": f"could not start papermill: {exc}"})
            return manifest
        where = f"  ({slot.describe()})" if self.jobs > 1 and slot.describe() else ""
        self.echo(f"[start] {spec.run_id}  {display_path(spec.notebook)}{where}")
        return _Active(spec, slot, process, log, manifest, started, started_epoch)

    def _finish(self, active: _Active, interrupted: bool = False) -> dict[str, Any]:
        spec, manifest = active.spec, active.manifest
        wall = time.perf_counter() - active.started
        active.log.close()
        executed = spec.run_dir / spec.notebook.name
        outcome = notebook_outcome(executed)
        metrics = None
        if spec.output_dir is not None:
            source = spec.output_dir / "metrics.json"
            if source.is_file() and source.stat().st_mtime >= active.started_epoch - 1:
                metrics = read_json(source)
                if metrics is not None and source.resolve() != (spec.run_dir / "metrics.json").resolve():
                    shutil.copyfile(source, spec.run_dir / "metrics.json")
        code = active.process.returncode
        status = "interrupted" if interrupted else "completed" if code == 0 else "failed"
        files, files_source = data_files(metrics, spec.parameters)
        duration = outcome["duration"]
        manifest.update(
            status=status,
            executed_notebook=executed.name if executed.exists() else None,
            ended_at=utc_now(),
            wall_s=round(wall, 3),
            notebook_s=None if duration is None else round(float(duration), 3),
            overhead_s=None if duration is None else round(wall - float(duration), 3),
            device=(metrics or {}).get("device") or detect_device(active.slot.env.get("CUDA_VISIBLE_DEVICES")),
            data_files=files,
            data_files_source=files_source,
        )
        if "seed" not in spec.parameters and (metrics or {}).get("seed") is not None:
            manifest["seed"] = metrics["seed"]  # what the notebook reports it used
        if metrics:
            trace = [p for p in metrics.get("loss_trace") or [] if isinstance(p, dict) and "step" in p and "loss" in p]
            manifest.update(
                peak_memory_mb=metrics.get("peak_memory_mb"),
                loss_trace=trace,
                final_loss=metrics.get("final_loss", trace[-1]["loss"] if trace else None),
                metrics=metrics.get("metrics") or {},
            )
        elif status == "completed":
            manifest["warning"] = "the notebook wrote no metrics.json in its output_dir"
        if status == "failed":
            cause = failure_cause(log_tail(spec.run_dir / "papermill.log", 400))
            manifest["error"] = outcome["error"] or {
                "message": f"papermill exited with code {code}: "
                + (cause or log_tail(spec.run_dir / "papermill.log", 3) or "no output"),
                "log_tail": log_tail(spec.run_dir / "papermill.log"),
            }
        if interrupted:
            manifest["reason"] = "the batch was interrupted while this run executed"
        self._apply_reference(manifest)
        return manifest

    @staticmethod
    def _terminate(active: _Active, force: Callable[[], bool] = lambda: False) -> None:
        """Stop one run's process tree: SIGTERM, then SIGKILL after 5 s (at once when ``force()`` turns true)."""
        if hasattr(active.process, "kit_stop"):  # a remote backend's task: it stops its own notebook
            active.process.kit_stop()
            return
        stop_tree(active.process, force)

    # -- the loop --------------------------------------------------------------------------------------
    def _skip_blocked(self, pending: list[RunSpec], results: dict[str, dict[str, Any]]) -> None:
        changed = True
        while changed:
            changed = False
            for spec in list(pending):
                blocked = [d for d in spec.dependencies if d in results and results[d]["status"] != "completed"]
                if not blocked:
                    continue
                pending.remove(spec)
                dep = results[blocked[0]]
                manifest = self._base_manifest(spec, "skipped")
                manifest["reason"] = f"dependency {dep['run_id']} {dep['status']}; this run needs its output"
                manifest["ended_at"] = utc_now()
                if spec.run_dir.exists():
                    shutil.rmtree(spec.run_dir)
                spec.run_dir.mkdir(parents=True)
                self._record(manifest, results)
                changed = True

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        # The handler only sets flags (raising from it could land anywhere, e.g. mid-way through writing a
        # manifest): the loop sees _stop within POLL_S; a second signal makes _terminate kill at once.
        self._force = False

        def stop(signum: int, frame: object) -> None:
            if self._stop:
                self._force = True
                self.echo(f"{signal.Signals(signum).name} again: killing the running notebooks now")
                return
            self._stop = True
            self.echo(f"{signal.Signals(signum).name}: stopping; terminating running notebooks (again to force)")

        return {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def run(self) -> BatchResult:
        """Execute every run that is not already done, write manifests, summary and curves; return the result."""
        plan = self.plan
        remember_secrets(environment_secrets(plan.env))
        remember_secrets(value for spec in plan.runs for value in secret_values(spec.parameters))
        plan.out_dir.mkdir(parents=True, exist_ok=True)
        total = len(plan.runs)
        slots, slot_note = self.backend.slots(self.jobs, total)
        self.echo(f"batch {plan.label}: {total} run{'s' if total != 1 else ''} → {plan.out_dir} ({slot_note})")
        started = time.perf_counter()
        results: dict[str, dict[str, Any]] = {}
        if self.resume:
            for spec in plan.runs:
                manifest = completed_manifest(spec)
                if manifest is not None:
                    manifest["resumed"] = True
                    self._apply_reference(manifest)
                    self._record(manifest, results)
        pending = [s for s in plan.runs if s.name not in results]
        free = list(slots)
        active: list[_Active] = []
        interrupted = False
        previous = self._install_signals()
        try:
            while pending or active:
                if self._stop:
                    raise KeyboardInterrupt
                self._skip_blocked(pending, results)
                for spec in list(pending):
                    if not free:
                        break
                    if all(d in results and results[d]["status"] == "completed" for d in spec.dependencies):
                        pending.remove(spec)
                        slot = free.pop(0)
                        launched = self._launch(spec, slot)
                        if isinstance(launched, dict):
                            free.insert(0, slot)
                            self._record(launched, results)
                        else:
                            active.append(launched)
                done = [a for a in active if a.process.poll() is not None]
                for item in done:
                    active.remove(item)
                    free.append(item.slot)
                    free.sort(key=lambda slot: slot.number)
                    self._record(self._finish(item), results)
                if not done:
                    time.sleep(POLL_S)
        except KeyboardInterrupt:
            interrupted = True
            for item in active:
                self._terminate(item, lambda: getattr(self, "_force", False))
                self._record(self._finish(item, interrupted=True), results)
            for spec in pending:
                manifest = self._base_manifest(spec, "not started")
                manifest["reason"] = "the batch was interrupted before this run started"
                results[spec.name] = manifest
        except BaseException:
            _restore_signals(previous)
            raise
        manifests = [results[s.name] for s in plan.runs]
        counts: dict[str, int] = {}
        for manifest in manifests:
            counts[manifest["status"]] = counts.get(manifest["status"], 0) + 1
        result = BatchResult(manifests, interrupted, counts)
        try:  # still our handlers: a Ctrl-C while the summary is written does not lose it
            self._write_report(result, time.perf_counter() - started)
        finally:
            _restore_signals(previous)
        return result

    def _write_report(self, result: BatchResult, seconds: float) -> None:
        plan = self.plan
        plot_loss_curves(plan.out_dir / "loss_curves.png", result.manifests, self.reference)
        git = git_info()
        counts = ", ".join(f"{n} {status}" for status, n in result.counts.items())
        header = [
            f"# Batch {plan.label}",
            "",
            f"- plan: `{plan.path}`",
            f"- output: `{plan.out_dir}`",
            f"- git: {git['commit'][:12] + (' (dirty tree)' if git['dirty'] else '') if git else 'not a git checkout'}",
            f"- finished: {utc_now()} after {seconds:.1f} s{' (interrupted)' if result.interrupted else ''}",
            f"- runs: {counts}",
        ]
        _, md_path = write_summary(plan.out_dir, result.manifests, header)
        state = "interrupted" if result.interrupted else "done"
        self.echo(f"batch {state}: {counts} in {seconds:.1f} s → {md_path}")


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _clear_run_dir(run_dir: Path, keep: Path | None = None) -> None:
    """Empty ``run_dir`` for a fresh attempt, keeping ``keep`` (the output folder, checkpoints and all) when
    it lies inside; the folder exists afterwards."""
    inside = keep is not None and keep.resolve().is_relative_to(run_dir.resolve()) and keep.resolve() != run_dir.resolve()
    if run_dir.exists() and not inside:
        shutil.rmtree(run_dir)
    elif inside:
        top = run_dir / keep.resolve().relative_to(run_dir.resolve()).parts[0]
        for child in run_dir.iterdir():
            if child != top:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
