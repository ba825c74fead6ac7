"""What an executed notebook shows its reader: output, stderr and image counts per notebook and per cell.

Used to keep executed notebooks readable: stderr should carry only what the user should act on, so
:func:`stderr_lines` is what a test (or ``kit notebooks stats runs/tiny/*/*.ipynb``) measures. :data:`LIMITS`
are what every executed notebook of the tiny plan and of the main job is held to (``kit notebooks stats
--check``): text lines per cell, printed dicts (per-step trainer logs), answers cut with ``...`` (a pandas cell or
a ``[:80]`` slice) and stderr lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _text(output: dict[str, Any]) -> str:
    text = output.get("text", "")
    return "".join(text) if isinstance(text, list) else str(text)


def _lines(text: str) -> int:
    return len([line for line in text.splitlines() if line.strip()])


@dataclass
class OutputStats:
    """Counts for one executed notebook: outputs, non-blank stdout/stderr lines, images, widgets, errors."""

    path: str
    outputs: int = 0
    stdout_lines: int = 0
    stderr_lines: int = 0
    images: int = 0
    widgets: int = 0
    errors: int = 0
    result_lines: int = 0
    max_cell_lines: int = 0
    dict_lines: int = 0
    cut_answers: int = 0
    stderr_by_cell: dict[int, list[str]] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def line(self) -> str:
        return (f"{self.path}: {self.outputs} outputs, {self.stdout_lines} stdout lines, "
                f"{self.result_lines} result lines, {self.stderr_lines} stderr lines, {self.images} images, "
                f"{self.widgets} widgets, {self.errors} errors; most lines in one cell {self.max_cell_lines}, "
                f"dict-like lines {self.dict_lines}, cut answers {self.cut_answers}")


# What an executed notebook may show: text lines in one cell (stdout + results), printed dicts, cut answers.
LIMITS: dict[str, int] = {"max_cell_lines": 80, "dict_lines": 0, "cut_answers": 0}
# A printed dict (``{'loss': '5.82', ...}``): the per-step log the compact training log replaces.
_DICT_LINE = re.compile(r"^\s*\{\s*['\"][^'\"]+['\"]\s*:.*\}\s*$")
# Text cut with an ellipsis: a pandas cell (``...`` then a column gap or the line's end) or a sliced answer.
_CUT = re.compile(r"\S(?:\.\.\.|…)(?= {2,}|\s*$)")
_DISPLAY_SEP = " │ "  # kit.evaluation.display's label separator: its answers are wrapped in full, never cut


def _is_cut(line: str) -> bool:
    return _DISPLAY_SEP not in line and bool(_CUT.search(line)) and not line.rstrip().endswith(("...)", "... done"))


def problems(stats: OutputStats, limits: dict[str, int] | None = None, stderr_limit: int | None = None) -> list[str]:
    """Why ``stats`` exceeds ``limits`` (default :data:`LIMITS`) or ``stderr_limit``; empty when within them."""
    limits = {**LIMITS, **(limits or {})}
    found = []
    for name, limit in limits.items():
        value = getattr(stats, name)
        if value > limit:
            shown = "; ".join(stats.examples.get(name, [])[:2])
            found.append(f"{stats.path}: {name} {value} > {limit}" + (f" (e.g. {shown})" if shown else ""))
    if stderr_limit is not None and stats.stderr_lines > stderr_limit:
        found.append(f"{stats.path}: stderr_lines {stats.stderr_lines} > {stderr_limit}")
    return found


def _load(nb_path: str | Path) -> dict[str, Any]:
    from kit.notebooks.files import read_notebook

    return read_notebook(nb_path)


def _note(stats: OutputStats, kind: str, line: str) -> None:
    stats.examples.setdefault(kind, []).append(line.strip()[:120])


def _count_text(stats: OutputStats, text: str) -> int:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if _DICT_LINE.match(line):
            stats.dict_lines += 1
            _note(stats, "dict_lines", line)
        if _is_cut(line):
            stats.cut_answers += 1
            _note(stats, "cut_answers", line)
    return len(lines)


def output_stats(nb_path: str | Path) -> OutputStats:
    """Count what the executed notebook at ``nb_path`` shows (blank lines not counted)."""
    nb = _load(nb_path)
    stats = OutputStats(str(nb_path))
    for index, cell in enumerate(nb.get("cells", [])):
        cell_lines = 0
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            stats.outputs += 1
            kind = output.get("output_type")
            data = output.get("data", {})
            if kind == "stream" and output.get("name") == "stderr":
                lines = [ln for ln in _text(output).splitlines() if ln.strip()]
                stats.stderr_lines += len(lines)
                stats.stderr_by_cell.setdefault(index, []).extend(lines)
            elif kind == "stream":
                count = _count_text(stats, _text(output))
                stats.stdout_lines += count
                cell_lines += count
            elif kind == "error":
                stats.errors += 1
            if any(key.startswith("image/") for key in data):
                stats.images += 1
            elif kind in ("execute_result", "display_data") and "text/plain" in data:
                plain = data["text/plain"]
                count = _count_text(stats, "".join(plain) if isinstance(plain, list) else str(plain))
                stats.result_lines += count
                cell_lines += count
            if "application/vnd.jupyter.widget-view+json" in data:
                stats.widgets += 1
        if cell_lines > stats.max_cell_lines:
            stats.max_cell_lines = cell_lines
            stats.examples["max_cell_lines"] = [f"cell {index}"]
    return stats


def stderr_lines(nb_path: str | Path) -> int:
    """Non-blank stderr lines across every cell of an executed notebook."""
    return output_stats(nb_path).stderr_lines
