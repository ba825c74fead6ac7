"""Which wheels of ``.whl/extra/`` this Python lacks: prints their paths, one a line, for gpu_check.sh to install.

The extras (pytest, psutil, rich, click, attrs, ipywidgets, ...) are only for a GPU image that lacks them: a
wheel is picked when one of its top-level modules cannot be imported here (with the main ``.whl/`` set already
on ``sys.path``), so the image's own copies are never shadowed.

  python benchmarks/gpu_extras.py .whl/extra
"""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path


def top_level_modules(wheel: Path) -> list[str]:
    """The importable top-level names a wheel installs (from top_level.txt, else from its file list)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        listed = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        if listed:
            found = archive.read(listed[0]).decode().split()
            if found:
                return sorted(set(found))
    tops = set()
    for name in names:
        first = name.split("/", 1)[0]
        if first.endswith((".dist-info", ".data")) or first == "__pycache__":
            continue
        if "/" in name:
            tops.add(first)
        elif first.endswith(".py"):
            tops.add(first[:-3])
        elif ".cpython-" in first or first.endswith(".abi3.so"):
            tops.add(first.split(".", 1)[0])
    return sorted(tops)


def missing_wheels(folder: Path) -> list[Path]:
    """Wheels in ``folder`` with a top-level module this interpreter cannot find."""
    picked = []
    for wheel in sorted(folder.glob("*.whl")):
        modules = [m for m in top_level_modules(wheel) if m.isidentifier()]
        if not modules or any(importlib.util.find_spec(m) is None for m in modules):
            picked.append(wheel)
    return picked


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: gpu_extras.py EXTRA_WHEEL_FOLDER", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    if not folder.is_dir():
        return 0  # no extras prepared: nothing to add
    for wheel in missing_wheels(folder):
        print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
