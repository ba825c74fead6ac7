"""kit.evaluation.adapters: 05 finds adapters in folders, on Drive or on the hub, and stops with one message when none is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.errors import KitError
from kit.evaluation.adapters import NoAdapters, find_adapter, find_adapters

ROOT = Path(__file__).resolve().parent.parent


def _adapter(folder: Path, eval_set: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}), encoding="utf-8")
    if eval_set:
        (folder / "eval_set.jsonl").write_text('{"prompt": "p", "reference": "r"}\n', encoding="utf-8")
    return folder


def _cached_hub_repo(cache: Path, repo_id: str) -> Path:
    """A model repository as huggingface_hub's cache lays it out (refs/main -> snapshots/<commit>/)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    return _adapter(repo / "snapshots" / commit)


def test_local_folders_are_found_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _adapter(tmp_path / "a"), _adapter(tmp_path / "b")
    assert find_adapters({"second": str(b), "first": str(a)}) == {"second": b.resolve(), "first": a.resolve()}
    assert "adapter 'second'" in capsys.readouterr().out


def test_missing_ones_are_skipped_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _adapter(tmp_path / "good")
    _adapter(tmp_path / "no_eval", eval_set=False)
    (tmp_path / "empty").mkdir()
    found = find_adapters({"alpaca": str(good), "medical": str(tmp_path / "empty"),
                           "dpo": str(tmp_path / "no_eval")})
    assert list(found) == ["alpaca"]
    out = capsys.readouterr().out
    assert "skipped adapter 'medical'" in out and "holds no adapter_config.json" in out and "02_medical_sft" in out
    assert "skipped adapter 'dpo'" in out and "eval_set.jsonl" in out and "04_dpo_preference" in out


def test_none_found_stops_with_one_message_naming_the_notebooks(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    defaults = {"alpaca": "outputs/01_alpaca_sft", "medical": "outputs/02_medical_sft",
                "dpo": "outputs/04_dpo_preference"}
    with pytest.raises(NoAdapters) as caught:
        find_adapters(defaults)
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, KitError)
    assert all(nb in message for nb in ("01_alpaca_sft", "02_medical_sft", "04_dpo_preference"))
    assert "hub adapter ids" in message and "Drive" in message
    assert caught.value._render_traceback_() == [f"NoAdapters: {message}"]  # what Jupyter shows: one line


def test_hub_id_from_the_cache_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = _cached_hub_repo(tmp_path / "hub", "someone/medical-lora")
    folder, why = find_adapter("someone/medical-lora")
    assert (folder, why) == (snapshot, "")
    folder, why = find_adapter("someone/not-cached")
    assert folder is None and "HF_HUB_OFFLINE" in why and "someone/not-cached" in why


def test_drive_path_without_drive_says_mount(tmp_path: Path) -> None:
    folder, why = find_adapter("/content/drive/MyDrive/adapters/medical")
    if Path("/content/drive/MyDrive").is_dir():
        pytest.skip("Google Drive is mounted here")
    assert folder is None and "drive.mount('/content/drive')" in why


@pytest.mark.notebooks
def test_05_without_adapters_stops_in_one_line_under_papermill(tiny_model_dir: Path, tmp_path: Path) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out = tmp_path / "05.ipynb"
    with pytest.raises(PapermillExecutionError) as caught:
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "05_evaluate_and_export.ipynb"), str(out), cwd=str(tmp_path),
            kernel_name="python3", progress_bar=False,
            parameters={"model_name": str(tiny_model_dir), "dtype": "float32", "max_seq_length": 256,
                        "output_dir": str(tmp_path / "out")},
        )
    assert caught.value.ename == "NoAdapters"
    executed = json.loads(out.read_text(encoding="utf-8"))
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1  # one line, no traceback
    assert errors[0]["traceback"][0].startswith("NoAdapters: no adapters found: alpaca (")
    assert "01_alpaca_sft" in errors[0]["traceback"][0]


def test_training_setup_reads_what_the_notebook_recorded(tmp_path: Path) -> None:
    import json

    from kit.evaluation.adapters import generative, training_setup

    (tmp_path / "metrics.json").write_text(json.dumps({"notebook": "04_dpo_preference", "parameters": {
        "model_name": "m", "load_in_4bit": True, "dtype": None}}), encoding="utf-8")
    setup = training_setup(tmp_path)
    assert setup == {"notebook": "04_dpo_preference", "model_name": "m", "load_in_4bit": True, "dtype": None}
    assert not generative(setup)
    assert generative({"notebook": "02_medical_sft"})
    assert training_setup(tmp_path / "missing") == {"notebook": None, "model_name": None, "load_in_4bit": None,
                                                    "dtype": None}
