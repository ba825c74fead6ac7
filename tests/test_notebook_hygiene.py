"""Committed notebooks: no outputs, Colab GPU metadata, a parameters cell with the common names, the one install cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kit
from kit.cli import main as kit_main
from kit.notebooks import install_cell
from kit.notebooks.files import dumps, notebook_parameters
from kit.notebooks.hygiene import normalize, problems

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


# 05 trains nothing: it keeps only the names it uses (no LoRA, optimiser or data settings).
EVALUATE_PARAMETERS = {"model_name", "max_seq_length", "load_in_4bit", "seed", "output_dir"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_common_parameters(path: Path) -> None:
    common = EVALUATE_PARAMETERS if path.stem.startswith("05_") else COMMON_PARAMETERS
    if path.stem.startswith("06_"):  # each method sets its own 4-bit loading and learning rate (learning_rates)
        common = (common - {"load_in_4bit", "learning_rate"}) | {"methods", "learning_rates"}
    assert common <= set(notebook_parameters(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_badge_and_install_cell(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"])
    assert f"colab.research.google.com/github/{install_cell.badge_path()}/blob/main/notebooks/{path.name}" in first
    install = ["".join(c["source"]) for c in nb["cells"] if install_cell.is_install_cell(c)]
    assert install == [install_cell.cell_source()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_gpu_metadata(path: Path) -> None:
    meta = json.loads(path.read_text(encoding="utf-8"))["metadata"]
    assert meta["accelerator"] == "GPU"
    assert meta["colab"] == {"gpuType": "T4", "provenance": []}
    assert meta["kernelspec"]["name"] == "python3"


def test_install_cell_is_short_and_carries_the_kit_version_and_source() -> None:
    cell = install_cell.cell_source()
    assert len(cell.splitlines()) <= 15, cell
    assert cell.startswith(install_cell.FIRST_LINE)
    assert f'finish(KIT_SOURCE, clone, found, "{kit.__version__}")' in cell
    assert f'os.environ.get("KIT_SOURCE") or "git+{install_cell.REPO_URL}"' in cell
    compile(cell, "install cell", "exec")  # plain Python, no IPython magics


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_carries_the_short_install_cell(path: Path) -> None:
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if install_cell.is_install_cell(c)]
    assert len(cells) == 1 and "".join(cells[0]["source"]) == install_cell.cell_source()
    assert len(cells[0]["source"]) <= 15


def test_unsloth_pins_are_the_requirements_file(tmp_path: Path) -> None:
    from kit.notebooks import install

    pins = install.unsloth_pins(ROOT)
    assert pins == install.UNSLOTH_PINS and len(pins) == 2  # an installed kit has no requirements file
    assert install.unsloth_pins(tmp_path) == install.UNSLOTH_PINS


def test_clean_restores_metadata_install_cell_and_badge(tmp_path: Path) -> None:
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    nb["metadata"] = {"kernelspec": nb["metadata"]["kernelspec"], "widgets": {"x": 1}}
    cell = next(c for c in nb["cells"] if install_cell.is_install_cell(c))
    cell["source"] = ["# Install: an old cell\n", "print('Not on Colab')\n"]
    nb["cells"][0]["source"] = ["[badge](https://colab.research.google.com/github/someone/else/blob/main/notebooks/x)"]
    path = tmp_path / "stale.ipynb"
    path.write_text(dumps(nb), encoding="utf-8")
    found = problems(path)
    assert any("install cell differs" in p for p in found) and any("badge" in p for p in found)
    assert any("metadata" in p for p in found)
    assert kit_main(["notebooks", "clean", str(path)]) == 0
    assert problems(path) == []
    cleaned = json.loads(path.read_text(encoding="utf-8"))
    assert cleaned["metadata"]["accelerator"] == "GPU"
    assert install_cell.badge_path() in "".join(cleaned["cells"][0]["source"])


def test_check_catches_a_missing_install_cell(tmp_path: Path) -> None:
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if not install_cell.is_install_cell(c)]
    path = tmp_path / "no_install.ipynb"
    path.write_text(dumps(normalize(nb)), encoding="utf-8")
    assert any("expected one install cell" in p for p in problems(path))


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
