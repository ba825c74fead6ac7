"""What exactly produced a run: code version, packages, device, seed, data hashes, timing and outcome.

``manifest.json`` in each run folder (``status`` is completed | failed | skipped | interrupted; ``running``
while it executes)::

    {"run_id", "name", "status", "reason", "hash", "dependencies": [run ids],
     "notebook": {"path", "sha256"}, "executed_notebook", "parameters" (resolved), "parameters_sha256",
     "parameters_written", "env", "git": {"commit", "dirty"} | null, "versions": {python, torch, ...},
     "device": {...}, "seed", "data_files": [{"path", "sha256", "bytes"}], "data_files_source",
     "started_at", "ended_at" (ISO 8601 UTC), "wall_s", "notebook_s", "overhead_s", "peak_memory_mb",
     "final_loss", "loss_trace", "metrics", "error": {"ename", "evalue", "cell", "source", "traceback"} | null,
     "reference": {"status", "detail"} | null, "resumed"}

``env`` keeps every variable's name, but secret-looking ones (TOKEN, KEY, SECRET, PASSWORD, PAT, ... and the
Hugging Face / W&B token names) are written as ``"<redacted>"``, and the whole manifest is redacted by value
too (token shapes, URL passwords, known secret values: :mod:`kit.runtime.redact`): a manifest never holds a token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import re
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from kit.paths import repo_root
from kit.runinfo import sha256_file
from kit.runtime.redact import REDACTED as REDACTED
from kit.runtime.redact import is_secret_name as is_secret_name
from kit.runtime.redact import redact
from kit.runtime.redact import redact_env as redact_env

VERSIONED = ("torch", "transformers", "trl", "peft", "datasets", "unsloth", "unsloth_zoo", "accelerate", "papermill")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def utc_now() -> str:
    """The current time as ISO 8601 UTC with seconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def git_info() -> dict[str, Any] | None:
    """The repository's commit and whether its tree has changes; None outside a git checkout."""
    root = repo_root()

    def git(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return None

    head = git("rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return None
    status = git("status", "--porcelain")
    dirty = None if status is None or status.returncode != 0 else bool(status.stdout.strip())
    return {"commit": head.stdout.strip(), "dirty": dirty}


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """Python and the versions of the training stack, read from package metadata (nothing imported)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def hash_data_path(value: str) -> list[dict[str, Any]]:
    """sha256 and size of the file named by a ``data_path`` parameter, or of every file in that folder."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = repo_root() / path
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts))
    else:
        return []
    return [{"path": str(p.resolve()), "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in files]


def data_files(metrics: dict[str, Any] | None, parameters: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The data files a run read and where that list came from (metrics.json, else the data_path parameter)."""
    recorded = (metrics or {}).get("data_files")
    if isinstance(recorded, list) and recorded:
        return recorded, "metrics.json"
    value = parameters.get("data_path")
    if isinstance(value, str) and value:
        return hash_data_path(value), "data_path parameter"
    return [], None


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def notebook_outcome(executed: Path) -> dict[str, Any]:
    """From an executed notebook: papermill's own duration, and the failing cell's error if one failed."""
    try:
        nb = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"duration": None, "error": None}
    duration = nb.get("metadata", {}).get("papermill", {}).get("duration")
    error = None
    index = -1
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "papermill-error-cell-tag" in tags or "injected-parameters" in tags:
            continue  # cells papermill added: count cells as in the source notebook
        index += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                lines = _source(cell).strip().splitlines()
                trace = [_ANSI.sub("", line) for line in output.get("traceback", [])]
                tail = "\n".join(trace).strip().splitlines()[-6:]
                error = {
                    "ename": output.get("ename"),
                    "evalue": output.get("evalue"),
                    "cell": index,
                    "source": "\n".join(lines[:8]) + ("\n..." if len(lines) > 8 else ""),
                    "traceback": "\n".join(tail),
                }
                break
        if error:
            break
    return {"duration": duration, "error": error}


def error_text(error: dict[str, Any] | None) -> str:
    """One line for a manifest error: ``ValueError: boom (cell 3: raise ValueError(...))``."""
    if not error:
        return ""
    if error.get("ename"):
        arrows = [line for line in (error.get("traceback") or "").splitlines() if line.lstrip().startswith("---->")]
        first = (error.get("source") or "").splitlines()[:1]
        where = f" (cell {error.get('cell')}"
        if arrows:
            number, _, code = arrows[-1].strip()[5:].strip().partition(" ")
            where += f", line {number}: {code.strip()[:70]})"
        else:
            where += f": {first[0].strip()[:70]})" if first else ")"
        return f"{error['ename']}: {' '.join(str(error.get('evalue', '')).split())[:200]}{where}"
    return " ".join(str(error.get("message", "")).split())[:300]


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a run's papermill log (for failures that left no error cell)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when it is missing or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write ``value`` as indented JSON atomically (a reader never sees half a file), redacted by name and by
    value (:mod:`kit.runtime.redact`): a manifest never holds a token."""
    from kit.errors import RunFailed

    value = redact(value)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # named by the folder, not by the hidden temporary file
        raise RunFailed(
            f"{path.parent}: cannot write {path.name} in this folder ({exc.strerror or exc}); check that the folder "
            "is writable and the disk has space"
        ) from None


_ELASTIC = re.compile(r"ChildFailedError|CalledProcessError|elastic|torchrun|accelerate\.commands|Traceback|^\s*File ")
_ERROR_LINE = re.compile(r"^(?:\[rank\d+\]:\s*)?((?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b.*)$")


def failure_cause(log: str) -> str | None:
    """The line naming why a run failed, from its log: the first ``SomeError: ...`` a process raised, not the
    launcher's wrapping (torch elastic's ChildFailedError, accelerate's CalledProcessError), else None."""
    for line in log.splitlines():
        match = _ERROR_LINE.match(line.strip())
        if match and not _ELASTIC.search(match.group(1)):
            return " ".join(match.group(1).split())[:300]
    return None


def parameters_sha256(parameters: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of resolved parameters."""
    from kit.batch.plan import canonical_json

    return hashlib.sha256(canonical_json(parameters).encode("utf-8")).hexdigest()


def display_path(path: Path) -> str:
    """``path`` relative to the repository root when inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(repo_root()))
    except ValueError:
        return str(path)
