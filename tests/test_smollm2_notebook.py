"""The real model end to end: notebook 01 trains SmolLM2-135M-Instruct for a few steps, writes its held-out eval
block, and the adapter it saves reloads with the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.notebooks


def test_notebook_01_on_smollm2_writes_an_eval_block_and_a_reloadable_adapter(smollm2_dir: Path,
                                                                             tmp_path: Path) -> None:
    import papermill

    out_dir = tmp_path / "out"
    executed = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "01_alpaca_sft.ipynb"), str(executed), kernel_name="python3", progress_bar=False,
        cwd=str(ROOT),
        parameters={"model_name": str(smollm2_dir), "load_in_4bit": False, "dtype": "bfloat16",
                    "max_seq_length": 128, "data_path": "data/alpaca/alpaca_en.json", "max_steps": 2,
                    "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "eval_samples": 4,
                    "eval_max_new_tokens": 12, "output_dir": str(out_dir)},
    )
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    block = metrics["eval"]
    assert block["split"] == "holdout" and block["n"] == 4
    assert set(block["before"]) == set(block["after"]) == set(block["gain"]) == {"rouge_l", "bleu", "distinct_2"}
    for gain in block["gain"].values():
        lo, hi = gain["ci95"]
        assert lo <= gain["value"] <= hi
    assert 0 < block["before"]["rouge_l"] <= 1  # a real model answers: not the tiny model's noise
    assert metrics["parameters"]["model_name"] == str(smollm2_dir) and metrics["steps"] == 2

    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    saved = load_file(out_dir / "adapter_model.safetensors")
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.bfloat16)
    model = PeftModel.from_pretrained(base, str(out_dir))
    loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(saved) > 0
    for name, tensor in saved.items():
        key = next(k for k in loaded if k.replace(".default", "").endswith(name.replace("base_model.model.", "")))
        assert torch.equal(loaded[key].to(tensor.dtype), tensor), name
