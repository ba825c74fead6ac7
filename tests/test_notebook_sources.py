"""Notebooks on the data users bring: 01 trains from a local parquet file and from a ``save_to_disk`` folder, and
02 on a real-size department CSV (7,644 GBK rows, as in the public sets) stays fast because ``eval_samples`` caps
its before/after evaluation."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.notebooks


def _run(notebook: str, tmp_path: Path, parameters: dict) -> dict:
    import papermill

    out_dir = tmp_path / "out"
    papermill.execute_notebook(str(ROOT / "notebooks" / notebook), str(tmp_path / notebook), kernel_name="python3",
                               progress_bar=False, cwd=str(ROOT), parameters={**parameters, "output_dir": str(out_dir)})
    return json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))


def _tiny(tiny_model_dir: Path) -> dict:
    return {"model_name": str(tiny_model_dir), "load_in_4bit": False, "dtype": "float32", "max_seq_length": 256,
            "max_steps": 2, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "eval_samples": 2,
            "eval_max_new_tokens": 8}


@pytest.mark.parametrize("shape", ["parquet", "save_to_disk"])
def test_01_trains_from_a_parquet_file_and_a_saved_dataset(tiny_model_dir: Path, tmp_path: Path, shape: str) -> None:
    from datasets import Dataset

    rows = json.loads((ROOT / "data" / "alpaca" / "alpaca_en.json").read_text(encoding="utf-8"))[:40]
    table = Dataset.from_list(rows)
    if shape == "parquet":
        source = tmp_path / "alpaca.parquet"
        table.to_parquet(str(source))
    else:
        source = tmp_path / "alpaca_saved"
        table.save_to_disk(str(source))
    metrics = _run("01_alpaca_sft.ipynb", tmp_path, {**_tiny(tiny_model_dir), "data_path": str(source)})
    assert metrics["metrics"]["rows_read"] == 40 and metrics["metrics"]["rows_kept"] == 40
    assert metrics["steps"] == 2 and metrics["eval"]["n"] == 2


def test_02_on_a_real_size_csv_is_capped_by_eval_samples(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "IM_内科"
    folder.mkdir()
    with open(folder / "内科问答.csv", "w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["department", "title", "ask", "answer"])
        for i in range(7644):
            writer.writerow(["消化科", f"胃痛{i}", f"最近第{i}天胃痛，饭后更明显，怎么办？",
                             f"可能是胃炎或消化不良。建议规律饮食，少吃辛辣。如出现黑便或剧痛，请及时就医。（{i}）"])
    start = time.perf_counter()
    metrics = _run("02_medical_sft.ipynb", tmp_path, {**_tiny(tiny_model_dir), "data_path": str(tmp_path),
                                                       "eval_max_new_tokens": 16, "eval_samples": 16})
    seconds = time.perf_counter() - start
    assert metrics["metrics"]["rows_read"] == 7644 and metrics["metrics"]["rows_kept"] == 7644
    assert metrics["eval"]["n"] == 16  # not the 1,529 held-out rows
    assert seconds < 120, f"02 on 7,644 rows took {seconds:.0f} s"
