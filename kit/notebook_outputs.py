"""What an executed notebook shows its reader: output, stderr and image counts per notebook and per cell.

Used to keep executed notebooks readable: stderr should carry only what the user should act on, so
:func:`stderr_lines` is what a test (or ``kit notebooks stats runs/tiny/*/*.ipynb``) measures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError


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
    stderr_by_cell: dict[int, list[str]] = field(default_factory=dict)

    def line(self) -> str:
        return (f"{self.path}: {self.outputs} outputs, {self.stdout_lines} stdout lines, "
                f"{self.stderr_lines} stderr lines, {self.images} images, {self.widgets} widgets, "
                f"{self.errors} errors")


def _load(nb_path: str | Path) -> dict[str, Any]:
    try:
        return json.loads(Path(nb_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KitError(f"{nb_path}: cannot read notebook ({exc})") from exc


def output_stats(nb_path: str | Path) -> OutputStats:
    """Count what the executed notebook at ``nb_path`` shows (blank lines not counted)."""
    nb = _load(nb_path)
    stats = OutputStats(str(nb_path))
    for index, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            stats.outputs += 1
            kind = output.get("output_type")
            data = output.get("data", {})
            if kind == "stream" and output.get("name") == "stderr":
                lines = [ln for ln in _text(output).splitlines() if ln.strip()]
                stats.stderr_lines += len(lines)
                stats.stderr_by_cell.setdefault(index, []).extend(lines)
            elif kind == "stream":
                stats.stdout_lines += _lines(_text(output))
            elif kind == "error":
                stats.errors += 1
            if any(key.startswith("image/") for key in data):
                stats.images += 1
            if "application/vnd.jupyter.widget-view+json" in data:
                stats.widgets += 1
    return stats


def stderr_lines(nb_path: str | Path) -> int:
    """Non-blank stderr lines across every cell of an executed notebook."""
    return output_stats(nb_path).stderr_lines
