"""The notebooks' parameters as papermill reads them: help text, one README table, and unused names.

Papermill reads a ``parameters`` cell line by line with a regular expression, not with Python: a line whose
comment holds ``=`` (``x = True  # False = off``) is skipped, so ``x`` vanishes from ``papermill
--help-notebook`` and every ``-p x`` warns "unknown parameter". Each parameter therefore carries its help as
a comment without ``=`` (on the closing line of a multi-line value), optionally after ``# type: NAME``.
``kit notebooks params`` prints the table that README.md keeps between ``<!-- params:start -->`` and
``<!-- params:end -->``; ``--write-readme`` rewrites that region.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.notebooks.files import notebook_parameters, notebook_paths, parameters_cell, read_notebook

README_START = "<!-- params:start -->"
README_END = "<!-- params:end -->"


@dataclass
class ParameterInfo:
    """One parameter name across the notebooks: its type, defaults and help per notebook."""

    name: str
    type: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)  # notebook stem -> default as written
    help: dict[str, str] = field(default_factory=dict)  # notebook stem -> help text


def papermill_parameters(path: str | Path) -> dict[str, dict[str, Any]]:
    """What ``papermill --help-notebook`` sees: name -> {inferred_type_name, default, help} (papermill's parser)."""
    import papermill

    return {name: dict(info) for name, info in papermill.inspect_notebook(str(path)).items()}


def help_problems(path: str | Path) -> list[str]:
    """Parameters of ``path`` that papermill misses or shows without help, one line each."""
    declared = notebook_parameters(path)  # a file that is not a notebook fails here, in one line
    seen = papermill_parameters(path)
    found = []
    for name in declared:
        if name not in seen:
            found.append(f"{path}: papermill cannot read parameter {name!r} (a comment with '=' on its line?)")
        elif not str(seen[name].get("help") or "").strip():
            found.append(f"{path}: parameter {name!r} has no help comment (add '  # what it does' on its line)")
    return found


def _type_name(value: Any, declared: str) -> str:
    if declared and declared != "None":
        return f"{declared} or None" if value is None else declared
    return "None" if value is None else type(value).__name__


def collect(paths: list[Path] | None = None) -> list[ParameterInfo]:
    """Every parameter of the notebooks, in first-seen order (notebook order, then cell order)."""
    infos: dict[str, ParameterInfo] = {}
    for path in paths or notebook_paths():
        literal = notebook_parameters(path)
        seen = papermill_parameters(path)
        for name, value in literal.items():
            info = infos.setdefault(name, ParameterInfo(name))
            declared = str(seen.get(name, {}).get("inferred_type_name") or "")
            info.type = info.type or _type_name(value, declared)
            info.defaults[path.stem] = value
            info.help[path.stem] = str(seen.get(name, {}).get("help") or "").strip()
    return list(infos.values())


def _short(stem: str) -> str:
    return stem.split("_", 1)[0]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _meaning(info: ParameterInfo) -> str:
    """The help text, in English where there is one (02's comments are Chinese); where notebooks word it
    differently, each wording with the notebooks that use it."""
    texts = {stem: t for stem, t in info.help.items() if t}
    english = {stem: t for stem, t in texts.items() if sum(ord(c) < 128 for c in t) >= 0.8 * len(t)} or texts
    groups: dict[str, list[str]] = {}
    for stem, text in english.items():
        groups.setdefault(text, []).append(_short(stem))
    if len(groups) <= 1:
        return next(iter(groups), "")
    return "; ".join(f"{text} ({', '.join(stems)})" for text, stems in groups.items())


def _defaults(info: ParameterInfo) -> str:
    groups: dict[str, list[str]] = {}
    for stem, value in info.defaults.items():
        groups.setdefault(repr(value), []).append(_short(stem))
    if len(groups) == 1:
        return f"`{next(iter(groups))}`"
    return "; ".join(f"`{value}` ({', '.join(stems)})" for value, stems in groups.items())


def markdown_table(paths: list[Path] | None = None) -> str:
    """The README table: name, type, default (per notebook where they differ), notebooks, meaning."""
    lines = ["| parameter | type | default | notebooks | meaning |", "|---|---|---|---|---|"]
    for info in collect(paths):
        notebooks = ", ".join(_short(s) for s in info.defaults)
        lines.append(
            f"| `{info.name}` | {info.type} | {_cell(_defaults(info))} | {notebooks} | {_cell(_meaning(info))} |"
        )
    return "\n".join(lines) + "\n"


def readme_region(text: str) -> tuple[int, int]:
    """Start and end offsets of the generated table between the README markers."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise KitError(f"README.md: no {README_START} ... {README_END} region; add the two markers around the table")
    return start + len(README_START) + 1, end


def write_readme(readme: Path, table: str) -> bool:
    """Put ``table`` between the markers of ``readme``; returns True when the file changed."""
    text = readme.read_text(encoding="utf-8")
    start, end = readme_region(text)
    new = text[:start] + table + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def _code_cells(nb: dict[str, Any]) -> list[str]:
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" not in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else source
            # IPython magics and shell escapes are not Python: blank them before parsing.
            cells.append("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in text.splitlines()))
    return cells


def unused_parameters(path: str | Path) -> list[str]:
    """Names the ``parameters`` cell assigns that no later code cell reads."""
    path = Path(path)
    nb = read_notebook(path)
    declared = list(notebook_parameters(path))
    parameters_cell(nb)
    used: set[str] = set()
    for source in _code_cells(nb):
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise KitError(f"{path}: a code cell does not parse ({exc.msg}, line {exc.lineno})") from exc
        used.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
    return [name for name in declared if name not in used]
