"""Notebook hygiene: committed notebooks carry no outputs and stable metadata, and expose their parameters.

``kit notebooks clean`` rewrites notebooks into the committed form (so a diff shows only real changes): no
outputs, the Colab GPU metadata, the install cell of :mod:`kit.install_cell`, badges pointing at its
repository; ``kit notebooks check`` fails if any is not in that form. :func:`notebook_parameters` reads the cell
tagged ``parameters`` without executing it, which the batch runner uses to validate plans.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path
from typing import Any

from kit import install_cell
from kit.errors import KitError
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


def _source_text(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def normalize(nb: dict[str, Any]) -> dict[str, Any]:
    """Return the committed form: no outputs or counts, stable ids, only ``tags`` in cell metadata."""
    cells = []
    for index, cell in enumerate(nb.get("cells", [])):
        kind = cell.get("cell_type", "code")
        meta = {k: cell["metadata"][k] for k in _KEPT_CELL_METADATA if cell.get("metadata", {}).get(k)}
        clean: dict[str, Any] = {"cell_type": kind, "id": f"cell-{index:02d}", "metadata": meta}
        clean["source"] = _source_text(cell).splitlines(keepends=True)
        if kind == "code":
            clean["execution_count"] = None
            clean["outputs"] = []
        cells.append(clean)
    return {"cells": cells, "metadata": json.loads(json.dumps(STABLE_METADATA)), "nbformat": 4, "nbformat_minor": 5}


def dumps(nb: dict[str, Any]) -> str:
    """Serialise the way Jupyter does (1-space indent, UTF-8 kept as is, trailing newline)."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def read_notebook(path: str | Path) -> dict[str, Any]:
    """The notebook at ``path`` as a dict; a :class:`KitError` naming the file when it is missing, not JSON, or
    JSON that is not a notebook (every command reads notebooks through this)."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KitError(f"{path}: cannot read the notebook ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise KitError(f"{path}: not a notebook (not UTF-8 text); give a Jupyter .ipynb file") from None
    except (ValueError, RecursionError) as exc:
        raise KitError(f"{path}: not a notebook (not valid JSON: {' '.join(str(exc).split())[:120]})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list) or not all(
        isinstance(c, dict) and isinstance(c.get("source", ""), str | list) for c in cells
    ):
        raise KitError(
            f"{path}: JSON, but not a Jupyter notebook (it needs a 'cells' list of cell objects); give an .ipynb file"
        )
    if not isinstance(nb.get("metadata", {}), dict):
        raise KitError(f"{path}: JSON, but not a Jupyter notebook ('metadata' is not an object)")
    return nb


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


def parameters_cell(nb: dict[str, Any]) -> str:
    """Source of the cell tagged ``parameters``; raises :class:`KitError` if there is none."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return _source_text(cell)
    raise KitError("the notebook has no cell tagged 'parameters'; tag its first code cell 'parameters'")


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """Names and default values assigned in the ``parameters`` cell (literals only, nothing executed)."""
    path = Path(path)
    nb = read_notebook(path)
    try:
        tree = ast.parse(parameters_cell(nb))
    except KitError as exc:
        raise KitError(f"{path}: {exc}") from exc
    except SyntaxError as exc:
        raise KitError(
            f"{path}: the cell tagged 'parameters' does not parse ({exc.msg}, line {exc.lineno}); fix that line"
        ) from None
    except (ValueError, RecursionError) as exc:  # a NUL byte, or nesting Python cannot parse
        raise KitError(f"{path}: the cell tagged 'parameters' cannot be read as Python ({exc})") from None
    params: dict[str, Any] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
            try:
                params[target.id] = ast.literal_eval(node.value)
            except ValueError:
                params[target.id] = None  # an expression: known name, no literal default
    return params


def notebook_paths(paths: list[str] | None = None) -> list[Path]:
    """The notebooks named, or every notebook under ``notebooks/``."""
    if paths:
        return [Path(p) for p in paths]
    return sorted((repo_root() / "notebooks").glob("*.ipynb"))


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
                   help="stats: exit 1 when a notebook exceeds kit.notebook_outputs.LIMITS (cell lines, dicts, cut answers)")
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
        from kit.notebook_outputs import output_stats, problems

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
    from kit.notebook_params import markdown_table, write_readme

    table = markdown_table(notebook_paths(args.paths))
    if args.write_readme:
        changed = write_readme(repo_root() / "README.md", table)
        print("README.md parameter table " + ("updated" if changed else "already up to date"))
    else:
        print(table, end="")
    return 0
