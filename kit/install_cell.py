"""The install cell every notebook carries: its one source of truth, and how to put it into a notebook.

The cell runs before the kit can be imported, so it is plain standard-library Python. ``kit notebooks clean``
writes :func:`cell_source` into every notebook and ``kit notebooks check`` fails where a notebook differs.
To install from a different home (a fork, a release), change :data:`REPO_URL` and run ``kit notebooks clean``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kit import __version__
from kit.paths import repo_root

# Where the kit lives. The only place the repository's address is written: the cells and badges follow it.
REPO_URL = "https://github.com/unsloth-notebook-kit/unsloth-notebook-kit"
DEFAULT_SOURCE = f"git+{REPO_URL}"
DIST_NAME = "unsloth-notebook-kit"
FIRST_LINE = "# Install the kit."
# Unsloth pins come from requirements-unsloth.txt (they install with --no-deps); a fallback for installed copies.
_UNSLOTH_FALLBACK = ("unsloth==2026.10.9", "unsloth_zoo==2026.10.9")

_TEMPLATE = '''\
# Install the kit. The same cell is in every notebook (written from kit/install_cell.py); re-running it is harmless.
# - the kit is installed already: prints its version, nothing else;
# - inside a clone of the repository: installs that clone (editable);
# - anywhere else (Colab, Kaggle, any kernel): installs KIT_SOURCE, a pip requirement. Set the KIT_SOURCE
#   environment variable for a fork or a local copy, e.g. git+file:///path/to/clone.
# The running kernel's torch is pinned, never replaced; with a CUDA GPU it adds the `gpu` extra.
import importlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

KIT_VERSION = "@VERSION@"
KIT_SOURCE = os.environ.get("KIT_SOURCE") or "@SOURCE@"


class KitInstallError(RuntimeError):
    def _render_traceback_(self):  # Jupyter shows the one line, not a traceback
        return [f"KitInstallError: {self}"]


def _kit_version():
    importlib.invalidate_caches()
    try:
        return importlib.metadata.version("@DIST@")
    except importlib.metadata.PackageNotFoundError:
        return None


# What the kit needs importable besides itself (unsloth and unsloth_zoo come with --no-deps, so they are checked too).
_KIT_NEEDS = ("unsloth", "unsloth_zoo", "trl", "peft", "transformers", "datasets", "accelerate", "papermill", "yaml",
              "pandas", "matplotlib", "psutil")


def _shown(text):
    """``text`` with any credentials of a URL masked (git+https://user:TOKEN@host -> git+https://***@host)."""
    return re.sub(r"://[^/@\\s]+@", "://***@", str(text))


def _kit_on_path():
    """The folder the kit imports from when it is importable without being pip-installed (PYTHONPATH, a copied
    tree) at this version, with everything it needs; else None. Checked before this cell changes sys.path."""
    importlib.invalidate_caches()
    spec = importlib.util.find_spec("kit")
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    found = re.search(r'^__version__ = "([^"]+)"', Path(spec.origin).read_text(encoding="utf-8"), re.M)
    if found is None or found.group(1) != KIT_VERSION:
        return None
    if any(importlib.util.find_spec(name) is None for name in _KIT_NEEDS):
        return None
    return Path(spec.origin).parent.parent


def _kit_clone():
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "@DIST@"' in pyproject.read_text(encoding="utf-8"):
            return folder
    return None


def _kit_importable(clone):
    if clone is not None and importlib.util.find_spec("kit") is None:
        sys.path.insert(0, str(clone))  # an editable install made after the kernel started
    return all(importlib.util.find_spec(name) is not None for name in ("kit", "unsloth"))


def _kit_install():
    on_path = _kit_on_path()
    clone = _kit_clone()
    if _kit_version() == KIT_VERSION and _kit_importable(clone):
        print(f"[kit] @DIST@ {KIT_VERSION} is installed: nothing to do")
        return
    if on_path is not None:
        print(f"[kit] kit {KIT_VERSION} is importable from {on_path} (not pip-installed) with unsloth and "
              "everything else it needs: nothing to do")
        return
    if _kit_version() == KIT_VERSION and importlib.util.find_spec("kit") is None:
        raise KitInstallError("[kit] the kit was installed after this kernel started: restart the kernel, then run on")
    pins = []
    for name in ("torch", "torchvision", "torchaudio"):
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    gpu = False
    if pins and pins[0].startswith("torch=="):
        probe = [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"]
        gpu = subprocess.run(probe, capture_output=True, text=True, check=False).stdout.strip() == "True"
    else:
        print("[kit] no torch here: pip installs the default build (for a CPU-only machine install the CPU build first)")
    extras = "[gpu]" if gpu else ""
    source = str(clone) if clone is not None else KIT_SOURCE
    targets = ["-e", f"{clone}{extras}"] if clone is not None else [KIT_SOURCE, f"@DIST@{extras}"]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("".join(pin + "\\n" for pin in pins))  # keeps the running torch
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", constraints.name]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a wrong git URL fails instead of asking for a password
    print(f"[kit] installing {_shown(source)} next to {', '.join(pins) or 'no torch'}" + (" with the gpu extra" if gpu else ""))
    ok = subprocess.run([*pip, *targets], env=env, check=False).returncode == 0
    if not ok and gpu:
        print("[kit] retrying with the gpu-core extra (no xformers build matches this torch; Unsloth uses SDPA)")
        targets[-1] = targets[-1].replace("[gpu]", "[gpu-core]")
        ok = subprocess.run([*pip, *targets], env=env, check=False).returncode == 0
    if ok:
        ok = subprocess.run([*pip, "--no-deps", @UNSLOTH@], env=env, check=False).returncode == 0
    os.unlink(constraints.name)
    if not ok:
        raise KitInstallError(f"[kit] installing {_shown(source)} failed (pip says why above); "
                           "set KIT_SOURCE to a pip requirement that works here, e.g. git+file:///path/to/clone")
    if not _kit_importable(clone):
        raise KitInstallError("[kit] installed, but not importable in this kernel: restart the kernel, then run on")
    if "kit" in sys.modules:
        print("[kit] an older kit was imported before: restart the kernel to use the new one")
    print(f"[kit] installed @DIST@ {_kit_version()}")


_kit_install()
'''


def unsloth_pins(root: Path | None = None) -> tuple[str, ...]:
    """The ``unsloth`` / ``unsloth_zoo`` pins from ``requirements-unsloth.txt`` (installed with ``--no-deps``)."""
    path = (root or repo_root()) / "requirements-unsloth.txt"
    if not path.is_file():
        return _UNSLOTH_FALLBACK
    lines = (line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(line for line in lines if line)


def cell_source(root: Path | None = None) -> str:
    """The install cell's code, with the kit's version, :data:`DEFAULT_SOURCE` and the Unsloth pins filled in."""
    replacements = {
        "@VERSION@": __version__,
        "@SOURCE@": DEFAULT_SOURCE,
        "@DIST@": DIST_NAME,
        "@UNSLOTH@": ", ".join(f'"{pin}"' for pin in unsloth_pins(root)),
    }
    text = _TEMPLATE
    for key, value in replacements.items():
        text = text.replace(key, value)
    return text


def is_install_cell(cell: dict[str, Any]) -> bool:
    """A code cell whose first line starts ``# Install`` (this cell, or an older install cell it replaces)."""
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else source
    return cell.get("cell_type") == "code" and text.startswith("# Install")


def apply(nb: dict[str, Any], root: Path | None = None) -> bool:
    """Write the install cell into ``nb`` in place (replacing the one there); True if anything changed."""
    cells = [c for c in nb.get("cells", []) if is_install_cell(c)]
    if len(cells) != 1:
        return False
    wanted = cell_source(root).splitlines(keepends=True)
    changed = cells[0].get("source") != wanted
    cells[0]["source"] = wanted
    return changed


_BADGE = re.compile(r"colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/")


def badge_path() -> str:
    """``OWNER/NAME`` of :data:`REPO_URL`, as Colab badges spell it."""
    return "/".join(REPO_URL.rstrip("/").split("/")[-2:])


def fix_badges(text: str) -> str:
    """``text`` with every Colab badge pointing at :data:`REPO_URL`."""
    return _BADGE.sub(f"colab.research.google.com/github/{badge_path()}/blob/", text)


def problems(nb: dict[str, Any], name: str, root: Path | None = None) -> list[str]:
    """Why ``nb`` does not carry exactly the install cell (and badges) of this kit (empty when it does)."""
    cells = [c for c in nb.get("cells", []) if is_install_cell(c)]
    if len(cells) != 1:
        return [f"{name}: expected one install cell (a code cell starting '{FIRST_LINE}'), found {len(cells)}"]
    found = []
    source = cells[0].get("source", "")
    if ("".join(source) if isinstance(source, list) else source) != cell_source(root):
        found.append(f"{name}: the install cell differs from kit/install_cell.py (run: kit notebooks clean {name})")
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        if fix_badges(text) != text:
            found.append(f"{name}: a Colab badge does not point at {REPO_URL} (run: kit notebooks clean {name})")
            break
    return found
