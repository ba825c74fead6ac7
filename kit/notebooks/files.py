"""Reading notebooks: a notebook file as a dict (one clear error for a bad file), its ``parameters`` cell and
the default values there (literals only, nothing executed), and the notebooks a command means.

Every command that reads a notebook goes through :func:`read_notebook`; :func:`notebook_parameters` is what the
batch runner validates plans against.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.paths import repo_root


def source_text(cell: dict[str, Any]) -> str:
    """A cell's source as one string (Jupyter stores it as a list of lines or as one string)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


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


def parameters_cell(nb: dict[str, Any]) -> str:
    """Source of the cell tagged ``parameters``; raises :class:`KitError` if there is none."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return source_text(cell)
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
