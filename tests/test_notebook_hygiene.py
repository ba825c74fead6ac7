"""Committed notebooks: no outputs, stable metadata, a parameters cell with the common names, one install cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.notebooks import dumps, normalize, notebook_parameters, problems

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COMMON_PARAMETERS = {
    "model_name", "max_seq_length", "load_in_4bit", "lora_r", "lora_alpha", "learning_rate", "max_steps",
    "per_device_train_batch_size", "gradient_accumulation_steps", "seed", "data_path", "output_dir",
}


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_form(path: Path) -> None:
    assert problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_common_parameters(path: Path) -> None:
    assert COMMON_PARAMETERS <= set(notebook_parameters(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_badge_and_install_cell(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"])
    assert "colab.research.google.com" in first and path.name in first
    install = ["".join(c["source"]) for c in nb["cells"] if "kit.bootstrap" in "".join(c["source"])
               and c["cell_type"] == "code"]
    assert len(install) == 1 and 'if "google.colab" in sys.modules' in install[0]


def test_install_cell_is_the_same_everywhere() -> None:
    cells = set()
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells |= {"".join(c["source"]) for c in nb["cells"] if "kit.bootstrap" in "".join(c["source"])}
    assert len(cells) == 1


def test_check_catches_outputs(tmp_path: Path) -> None:
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    nb["cells"][1]["execution_count"] = 3
    dirty = tmp_path / "dirty.ipynb"
    dirty.write_text(json.dumps(nb), encoding="utf-8")
    found = problems(dirty)
    assert any("outputs" in p for p in found) and any("execution counts" in p for p in found)
    dirty.write_text(dumps(normalize(nb)), encoding="utf-8")
    assert problems(dirty) == []


def test_check_catches_missing_parameters_tag(tmp_path: Path) -> None:
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell["metadata"].pop("tags", None)
    path = tmp_path / "untagged.ipynb"
    path.write_text(dumps(normalize(nb)), encoding="utf-8")
    assert any("parameters" in p for p in problems(path))
