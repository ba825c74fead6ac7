"""The install cell every notebook carries: its one source of truth, and how to put it into a notebook.

The cell is short because it does one thing before the kit can be imported (plain standard-library Python):
it makes the kit importable (the clone above the working folder goes on ``sys.path``, or ``pip install
--no-deps KIT_SOURCE`` installs the kit alone), then calls :func:`kit.notebooks.install.finish` for the rest.
``kit notebooks clean`` writes :func:`cell_source` into every notebook and ``kit notebooks check`` fails where
a notebook differs. To install from a different home (a fork, a release), change :data:`REPO_URL` and run
``kit notebooks clean``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kit import __version__

# Where the kit lives. The only place the repository's address is written: the cells and badges follow it.
REPO_URL = "https://github.com/unsloth-notebook-kit/unsloth-notebook-kit"
DEFAULT_SOURCE = f"git+{REPO_URL}"
DIST_NAME = "unsloth-notebook-kit"
FIRST_LINE = "# Install the kit."
_TEMPLATE = '''\
# Install the kit. The same cell is in every notebook (written from kit/notebooks/install_cell.py); re-running is harmless.
# The clone above this folder, else KIT_SOURCE (a pip requirement: set it for a fork, e.g. git+file:///path/to/clone).
import importlib.util, os, re, subprocess, sys
from pathlib import Path
KIT_SOURCE = os.environ.get("KIT_SOURCE") or "@SOURCE@"
clone = next((p for p in (Path.cwd().resolve(), *Path.cwd().resolve().parents) if (p / "pyproject.toml").is_file()
              and 'name = "@DIST@"' in (p / "pyproject.toml").read_text(encoding="utf-8")), None)
found = importlib.util.find_spec("kit") is not None
if not found and clone is not None:
    sys.path.insert(0, str(clone))  # importable at once; the kit installs the clone (editable) below
elif not found and subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", KIT_SOURCE]).returncode:
    shown = re.sub(r"://[^/@\\s]+@", "://***@", KIT_SOURCE)  # never print a token
    sys.exit(f"[kit] installing {shown} failed (pip says why above); set KIT_SOURCE to a pip requirement that works here")
from kit.notebooks.install import finish  # the rest: torch pinned, the kit's needs (+ GPU extras), unsloth --no-deps
finish(KIT_SOURCE, clone, found, "@VERSION@")
'''


def cell_source(root: Path | None = None) -> str:
    """The install cell's code, with the kit's version and :data:`DEFAULT_SOURCE` filled in (``root`` is unused:
    the Unsloth pins now live in :mod:`kit.notebooks.install`, which the cell calls)."""
    replacements = {"@VERSION@": __version__, "@SOURCE@": DEFAULT_SOURCE, "@DIST@": DIST_NAME}
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
        found.append(f"{name}: the install cell differs from kit/notebooks/install_cell.py (run: kit notebooks clean {name})")
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        if fix_badges(text) != text:
            found.append(f"{name}: a Colab badge does not point at {REPO_URL} (run: kit notebooks clean {name})")
            break
    return found
