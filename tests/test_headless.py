"""Headless detection under plain papermill, no frozen progress widgets, and stderr counts of executed notebooks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from kit.notebooks.outputs import output_stats, stderr_lines
from kit.paths import repo_root
from kit.runtime.headless import NBCLIENT_FLAG, headless_reason, is_headless

# The bars that froze in executed notebooks: transformers' "Loading weights" and huggingface_hub's downloads.
PROBE = """\
from kit.runtime.headless import headless_reason
from huggingface_hub.utils import tqdm as hub_tqdm
from transformers.utils.logging import tqdm

for _ in tqdm(range(3), desc="Loading weights"):
    pass
for _ in hub_tqdm(range(3), desc="Fetching files"):
    pass
print("reason:", headless_reason())
"""


def _execute(tmp_path: Path, *cells: str, name: str = "nb") -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1  # a parameter")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source, executed = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.out.ipynb"
    nbformat.write(nb, str(source))
    papermill.execute_notebook(str(source), str(executed), kernel_name="python3", cwd=str(repo_root()),
                               progress_bar=False, parameters={"x": 2})
    return executed


def _printed(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


def test_plain_papermill_is_headless_and_shows_no_widget(tmp_path: Path, monkeypatch) -> None:
    for name in ("KIT_HEADLESS", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)
    executed = _execute(tmp_path, "import kit", PROBE)
    assert "reason: nbclient" in _printed(executed)
    stats = output_stats(executed)
    assert stats.widgets == 0 and stats.stderr_lines == 0, stats.stderr_by_cell


def test_interactive_kernel_keeps_its_progress_widget(tmp_path: Path, monkeypatch) -> None:
    """Control: forced interactive (KIT_HEADLESS=0), the same cell leaves a widget, so the test above can fail."""
    pytest.importorskip("ipywidgets")
    monkeypatch.setenv("KIT_HEADLESS", "0")
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    executed = _execute(tmp_path, "import kit", PROBE)
    assert "reason: None" in _printed(executed)
    assert output_stats(executed).widgets == 2


def test_stderr_lines_counts_an_executed_notebook(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KIT_HEADLESS", "1")
    executed = _execute(
        tmp_path,
        'import sys\nprint("first\\nsecond", file=sys.stderr)\nprint("", file=sys.stderr)\nprint("to stdout")',
        'import sys\nsys.stderr.write("third\\n")',
    )
    assert stderr_lines(executed) == 3
    stats = output_stats(executed)
    assert stats.stdout_lines == 1 and stats.errors == 0
    assert sorted(stats.stderr_by_cell) == [2, 3]  # cell indexes (papermill inserts the injected-parameters cell)


def test_detection_outside_a_kernel(monkeypatch) -> None:
    monkeypatch.delenv("KIT_HEADLESS", raising=False)
    assert NBCLIENT_FLAG not in sys.argv
    assert is_headless() is False  # pytest is not a kernel: only KIT_HEADLESS counts
    monkeypatch.setenv("KIT_HEADLESS", "yes")
    assert headless_reason() == "KIT_HEADLESS"
    monkeypatch.setenv("KIT_HEADLESS", "0")
    monkeypatch.setattr(sys, "argv", [*sys.argv, NBCLIENT_FLAG])
    assert is_headless() is False  # explicit 0 wins
