"""Notebook hygiene: committed notebooks carry no outputs and stable metadata, and expose their parameters.

``kit notebooks clean`` rewrites notebooks into the committed form (so a diff shows only real changes): no
outputs, the Colab GPU metadata, the install cell of :mod:`kit.notebooks.install_cell`, badges pointing at its
repository; ``kit notebooks check`` fails if any is not in that form. Reading notebooks
and their ``parameters`` cell is :mod:`kit.notebooks.files`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.notebooks import install_cell
from kit.notebooks.files import dumps, notebook_paths, read_notebook, source_text
from kit.paths import repo_root

# The only notebook-level metadata we keep; everything else (widgets, papermill, execution timings) goes.
# `accelerator` and `colab.gpuType` make the Colab badge open a T4 GPU runtime (as Unsloth's notebooks do).
STABLE_METADATA: dict[str, Any] = {
    "accelerator": "GPU",
    "colab": {"gpuType": "T4", "provenance": []},
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
_KEPT_CELL_METADATA = ("tags",)


def normalize(nb: dict[str, Any]) -> dict[str, Any]:
    """Return the committed form: no outputs or counts, stable ids, only ``tags`` in cell metadata."""
    cells = []
    for index, cell in enumerate(nb.get("cells", [])):
        kind = cell.get("cell_type", "code")
        meta = {k: cell["metadata"][k] for k in _KEPT_CELL_METADATA if cell.get("metadata", {}).get(k)}
        clean: dict[str, Any] = {"cell_type": kind, "id": f"cell-{index:02d}", "metadata": meta}
        clean["source"] = source_text(cell).splitlines(keepends=True)
        if kind == "code":
            clean["execution_count"] = None
            clean["outputs"] = []
        cells.append(clean)
    return {"cells": cells, "metadata": json.loads(json.dumps(STABLE_METADATA)), "nbformat": 4, "nbformat_minor": 5}


def problems(path: str | Path) -> list[str]:
    """Why ``path`` is not in committed form (empty list when it is)."""
    path = Path(path)
    try:
        nb = read_notebook(path)
        text = path.read_text(encoding="utf-8")
    except KitError as exc:
        return [str(exc)]
    found = []
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if any(c.get("outputs") for c in code):
        found.append(f"{path}: has outputs")
    if any(c.get("execution_count") is not None for c in code):
        found.append(f"{path}: has execution counts")
    if not code or "parameters" not in code[0].get("metadata", {}).get("tags", []):
        found.append(f"{path}: the first code cell is not tagged 'parameters'")
    if text != dumps(normalize(nb)):
        found.append(f"{path}: metadata or layout differs from the committed form (run: kit notebooks clean {path})")
    found += install_cell.problems(nb, str(path))
    return found


def clean(nb: dict[str, Any]) -> dict[str, Any]:
    """The committed form of ``nb`` with this kit's install cell and Colab badges written in."""
    nb = normalize(nb)
    install_cell.apply(nb)
    for cell in nb["cells"]:
        cell["source"] = install_cell.fix_badges("".join(cell["source"])).splitlines(keepends=True)
    return nb


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kit notebooks check|clean|params|stats``."""
    p = subparsers.add_parser(
        "notebooks",
        help="check or clean committed notebooks; params: the parameter table; stats: executed notebooks' output counts",
    )
    p.add_argument("action", choices=["check", "clean", "params", "stats"])
    p.add_argument("paths", nargs="*", help="notebooks (default: notebooks/*.ipynb; stats: executed notebooks)")
    p.add_argument("--write-readme", action="store_true", help="params: rewrite README.md's parameter table")
    p.add_argument("--check", action="store_true",
                   help="stats: exit 1 when a notebook exceeds kit.notebooks.outputs.LIMITS (cell lines, dicts, cut answers)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.action in ("params", "stats"):
        return _run_params_or_stats(args)
    paths = notebook_paths(args.paths)
    if args.action == "clean":
        for path in paths:
            nb = read_notebook(path)
            path.write_text(dumps(clean(nb)), encoding="utf-8")
            print(f"cleaned {path}")
        return 0
    found = [msg for path in paths for msg in problems(path)]
    for msg in found:
        print(msg)
    print(f"{len(paths)} notebooks checked, {len(found)} problems")
    return 1 if found else 0


def _run_params_or_stats(args: argparse.Namespace) -> int:
    if args.action == "stats":
        from kit.notebooks.outputs import output_stats, problems

        if not args.paths:
            raise KitError("kit notebooks stats needs executed notebooks, e.g. runs/tiny/*/*.ipynb")
        found = []
        for path in args.paths:
            stats = output_stats(path)
            print(stats.line())
            found += problems(stats) if getattr(args, "check", False) else []
        for msg in found:
            print("over the limit:", msg)
        return 1 if found else 0
    from kit.notebooks.params import markdown_table, write_readme

    table = markdown_table(notebook_paths(args.paths))
    if args.write_readme:
        changed = write_readme(repo_root() / "README.md", table)
        print("README.md parameter table " + ("updated" if changed else "already up to date"))
    else:
        print(table, end="")
    return 0
