"""A conversation set with tool calls trains headless through notebook 01 (data_format chat), in the model's
chat template, with an assistant-only mask that check_formatting verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.notebooks


def _conversations(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        city = ["Paris", "Lima", "Oslo", "Cairo", "Hanoi", "Quito"][i % 6]
        rows.append({
            "conversations": [
                {"from": "system", "value": "You are a weather assistant."},
                {"from": "human", "value": f"What is the weather in {city} today? ({i})"},
                {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": city}})},
                {"from": "observation", "value": f"{10 + i}C, sunny"},
                {"from": "gpt", "value": f"It is {10 + i}C and sunny in {city}."},
            ],
            "tools": json.dumps([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                                                  "parameters": {"type": "object"}}}]),
        })
    return rows


def test_tool_call_conversations_train_through_notebook_01(tiny_model_dir: Path, tmp_path: Path) -> None:
    import papermill

    data = tmp_path / "tools.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _conversations(12)), encoding="utf-8")
    out_dir = tmp_path / "out"
    executed = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "01_alpaca_sft.ipynb"), str(executed), kernel_name="python3", progress_bar=False,
        cwd=str(ROOT),
        parameters={"model_name": str(tiny_model_dir), "load_in_4bit": False, "dtype": "float32",
                    "max_seq_length": 256, "data_path": str(data), "data_format": "chat", "max_steps": 3,
                    "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "eval_samples": 2,
                    "eval_max_new_tokens": 8, "output_dir": str(out_dir)},
    )
    text = "".join("".join(o.get("text", "")) for c in json.loads(executed.read_text(encoding="utf-8"))["cells"]
                   for o in c.get("outputs", []))
    assert "Formatting check (tokenized" in text and ": OK" in text
    assert '<tool_call>' in text and "get_weather" in text  # the call is rendered into the trained turn
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["metrics"]["rows_read"] == 12 and metrics["metrics"]["rows_kept"] == 12
    assert metrics["steps"] == 3 and metrics["eval"]["n"] == 2
    assert set(metrics["eval"]["gain"]) == {"rouge_l", "bleu", "distinct_2"}
    assert (out_dir / "adapter_config.json").is_file()
