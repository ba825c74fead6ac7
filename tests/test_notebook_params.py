"""Parameters cells papermill reads whole: help for every name, README table in sync, nothing declared unused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kit.notebooks.files import notebook_parameters, notebook_paths
from kit.notebooks.params import help_problems, markdown_table, readme_region, unused_parameters, write_readme
from kit.paths import repo_root

NOTEBOOKS = notebook_paths()


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_help_lists_every_parameter_with_help(path: Path) -> None:
    """The real CLI: `papermill --help-notebook` shows every name of the cell, each with help, and no warning."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name("papermill")), "--help-notebook", str(path)],
        capture_output=True, text=True, check=True,
    )
    assert "Unable to parse" not in out.stdout + out.stderr
    listed = {line.split(":", 1)[0].strip() for line in out.stdout.splitlines() if line.startswith("  ") and ":" in line
              and not line.startswith("   ")}
    names = set(notebook_parameters(path))
    assert names <= listed, f"missing from --help-notebook: {sorted(names - listed)}"
    assert help_problems(path) == []


def test_a_comment_with_equals_is_caught(tmp_path: Path) -> None:
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = ["x = True  # False = off\n", "y = 1\n", "z = 2  # fine\n"]
    broken = tmp_path / "broken.ipynb"
    broken.write_text(json.dumps(nb), encoding="utf-8")
    found = help_problems(broken)
    assert any("'x'" in m and "cannot read" in m for m in found)
    assert any("'y'" in m and "no help" in m for m in found)
    assert not any("'z'" in m for m in found)


def test_readme_table_is_in_sync() -> None:
    text = (repo_root() / "README.md").read_text(encoding="utf-8")
    start, end = readme_region(text)
    assert text[start:end] == markdown_table(), "README parameter table is stale: run kit notebooks params --write-readme"


def test_table_rows_and_rewrite(tmp_path: Path) -> None:
    table = markdown_table()
    names = {name for path in NOTEBOOKS for name in notebook_parameters(path)}
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == len(names)
    assert all(line.count(" | ") == 4 and not line.endswith("|  |") for line in rows), "a row lacks its meaning"
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- params:start -->\nold\n<!-- params:end -->\nrest\n", encoding="utf-8")
    assert write_readme(readme, table) is True
    assert write_readme(readme, table) is False
    assert readme.read_text(encoding="utf-8") == f"intro\n<!-- params:start -->\n{table}<!-- params:end -->\nrest\n"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_declared_parameter_goes_unused(path: Path) -> None:
    assert unused_parameters(path) == []


def test_unused_detection(tmp_path: Path) -> None:
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = ["used = 1  # a\n", "unused = 2  # b\n", "fstring = 3  # c\n"]
    nb["cells"] = [cell, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                          "source": ["%time x = 1\n", "print(used, f'{fstring}')\n", "unused_too = 4\n"]}]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    assert unused_parameters(path) == ["unused"]


def test_cli_prints_the_table() -> None:
    from kit.cli import main

    assert main(["notebooks", "params"]) == 0
