"""Stage two of the notebooks' install cell: with the kit importable, install everything else it needs.

The cell (:mod:`kit.notebooks.install_cell` writes it) first makes the kit importable: the clone above the
working folder goes on ``sys.path``, or ``pip install --no-deps KIT_SOURCE`` puts the kit alone in place.
Then it calls :func:`finish`, which pins the running kernel's torch (never replaced), installs the kit's
needs (with the ``gpu`` extra on a CUDA machine, ``gpu-core`` where no xformers build matches), then
``unsloth`` and ``unsloth_zoo`` with ``--no-deps``, and says when the kernel must restart. Re-running is
harmless: an installed kit (or one importable from ``PYTHONPATH`` with all it needs) is left as it is.
Standard library only: at this point nothing but the kit itself may be installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from kit.paths import repo_root

DIST_NAME = "unsloth-notebook-kit"
# What the kit needs importable besides itself (unsloth and unsloth_zoo come with --no-deps, so they are checked too).
KIT_NEEDS = ("unsloth", "unsloth_zoo", "trl", "peft", "transformers", "datasets", "accelerate", "papermill", "yaml",
             "pandas", "matplotlib", "psutil")
# Unsloth pins come from requirements-unsloth.txt (they install with --no-deps); an installed kit has no such
# file, so the same pins are written here too (tests/test_install_cell.py keeps the two equal).
UNSLOTH_PINS = ("unsloth==2026.10.9", "unsloth_zoo==2026.10.9")


class KitInstallError(RuntimeError):
    """An install step failed; Jupyter shows the one line, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"KitInstallError: {self}"]


def unsloth_pins(root: Path | None = None) -> tuple[str, ...]:
    """The ``unsloth`` / ``unsloth_zoo`` pins from ``requirements-unsloth.txt`` (installed with ``--no-deps``)."""
    path = (root or repo_root()) / "requirements-unsloth.txt"
    if not path.is_file():
        return UNSLOTH_PINS
    lines = (line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(line for line in lines if line)


def shown(text: object) -> str:
    """``text`` with any credentials of a URL masked (git+https://user:TOKEN@host -> git+https://***@host)."""
    return re.sub(r"://[^/@\s]+@", "://***@", str(text))


def dist_version() -> str | None:
    """The installed distribution's version (None when the kit is not pip-installed)."""
    importlib.invalidate_caches()
    try:
        return importlib.metadata.version(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        return None


def _importable(*names: str) -> bool:
    importlib.invalidate_caches()
    return all(importlib.util.find_spec(name) is not None for name in names)


def _torch_pins() -> list[str]:
    pins = []
    for name in ("torch", "torchvision", "torchaudio"):
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return pins


def _has_cuda() -> bool:
    probe = [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"]
    return subprocess.run(probe, capture_output=True, text=True, check=False).stdout.strip() == "True"


def finish(source: str, clone: str | Path | None, found: bool, version: str) -> None:
    """Install what the kit needs next to the running torch. ``found``: the kit was importable before the cell
    ran (then an installed kit at ``version``, or one on ``PYTHONPATH`` with all it needs, is left alone)."""
    import kit

    if found and dist_version() == version and _importable("kit", "unsloth"):
        print(f"[kit] {DIST_NAME} {version} is installed: nothing to do")
        return
    if found and dist_version() is None and kit.__version__ == version and _importable(*KIT_NEEDS):
        print(f"[kit] kit {version} is importable from {Path(kit.__file__).parent.parent} (not pip-installed) with "
              "unsloth and everything else it needs: nothing to do")
        return
    pins = _torch_pins()
    gpu = bool(pins) and pins[0].startswith("torch==") and _has_cuda()
    if not pins or not pins[0].startswith("torch=="):
        print("[kit] no torch here: pip installs the default build (for a CPU-only machine install the CPU build first)")
    extras = "[gpu]" if gpu else ""
    targets = ["-e", f"{clone}{extras}"] if clone is not None else [f"{DIST_NAME}{extras}=={version}"]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("".join(pin + "\n" for pin in pins))  # keeps the running torch
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", constraints.name]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a wrong git URL fails instead of asking for a password
    where = clone if clone is not None else source
    print(f"[kit] installing {shown(where)} next to {', '.join(pins) or 'no torch'}" + (" with the gpu extra" if gpu else ""))
    ok = subprocess.run([*pip, *targets], env=env, check=False).returncode == 0
    if not ok and gpu:
        print("[kit] retrying with the gpu-core extra (no xformers build matches this torch; Unsloth uses SDPA)")
        targets[-1] = targets[-1].replace("[gpu]", "[gpu-core]")
        ok = subprocess.run([*pip, *targets], env=env, check=False).returncode == 0
    if ok:
        ok = subprocess.run([*pip, "--no-deps", *unsloth_pins()], env=env, check=False).returncode == 0
    os.unlink(constraints.name)
    if not ok:
        raise KitInstallError(f"[kit] installing {shown(where)} failed (pip says why above); "
                              "set KIT_SOURCE to a pip requirement that works here, e.g. git+file:///path/to/clone")
    if not _importable("kit", "unsloth"):
        raise KitInstallError("[kit] installed, but not importable in this kernel: restart the kernel, then run on")
    if kit.__version__ != version:
        print(f"[kit] kit {kit.__version__} was imported before: restart the kernel to use {version}")
    print(f"[kit] installed {DIST_NAME} {dist_version()}")
