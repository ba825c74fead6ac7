"""kit.export.save's up-front GGUF check, kit.training.config's configs, kit.runinfo's metrics file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

import kit.training.model  # noqa: F401  -- unsloth before trl, as in the notebooks
from kit.errors import KitError
from kit.export.save import gguf_requirements, save_gguf


def test_gguf_check_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    for name in ("UNSLOTH_LLAMA_CPP_PATH", "UNSLOTH_LLAMA_CPP_OFFLINE", "UNSLOTH_LLAMA_CPP_SCRIPTS_DIR"):
        monkeypatch.setenv(name, "")  # restored after the test: the check sets them
    monkeypatch.delenv("KIT_LLAMA_CPP_DIR", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "CUDA GPU" not in str(gguf_requirements())  # GGUF export runs on a CPU too
    check = gguf_requirements(require_gpu=True)
    assert not check.ok
    text = str(check)
    assert "CUDA GPU" in text and "llama-quantize" in text and "convert_hf_to_gguf.py" in text
    assert "kit llama-cpp" in text  # the fix: the offline build
    assert "UNSLOTH_LLAMA_CPP_PATH" in text and str(tmp_path / ".unsloth" / "llama.cpp") in text
    with pytest.raises(KitError, match="llama-quantize"):
        save_gguf(object(), object(), tmp_path / "gguf")


def test_gguf_check_finds_llama_cpp_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import unsloth_zoo.llama_cpp as zoo

    folder = tmp_path / "llama.cpp"
    folder.mkdir()
    quantize = folder / "llama-quantize"  # Unsloth's check_llama_cpp runs it with --help
    quantize.write_text("#!/bin/sh\necho 'usage: llama-quantize'\n", encoding="utf-8")
    quantize.chmod(0o755)
    (folder / "convert_hf_to_gguf.py").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KIT_LLAMA_CPP_DIR", raising=False)
    for name in ("UNSLOTH_LLAMA_CPP_PATH", "UNSLOTH_LLAMA_CPP_OFFLINE", "UNSLOTH_LLAMA_CPP_SCRIPTS_DIR"):
        monkeypatch.setenv(name, "")  # restored after the test: the check sets them
    monkeypatch.setattr(zoo.check_llama_cpp, "__defaults__", zoo.check_llama_cpp.__defaults__)
    check = gguf_requirements(require_gpu=False)
    assert check.ok, str(check)
    assert check.found["llama-quantize"] == str(quantize)


@pytest.mark.parametrize(("batch", "accumulation", "generations", "expected"), [(2, 4, 6, 12), (6, 1, 6, 6), (4, 1, 4, 4), (1, 1, 2, 2)])
def test_grpo_generation_batch_divides_by_generations(
    tmp_path: Path, batch: int, accumulation: int, generations: int, expected: int
) -> None:
    from kit.training.config import grpo_config

    config = grpo_config(tmp_path, num_generations=generations, per_device_train_batch_size=batch,
                         gradient_accumulation_steps=accumulation, max_steps=1)
    assert config.generation_batch_size == expected
    assert config.generation_batch_size % generations == 0


def test_sft_config_defaults_and_overrides(tmp_path: Path) -> None:
    from kit.training.config import sft_config

    config = sft_config(tmp_path, max_seq_length=512, learning_rate=1e-3)
    assert config.max_length == 512 and config.learning_rate == 1e-3
    assert config.warmup_steps == 5 and config.weight_decay == 0.01 and config.seed == 3407
    assert config.per_device_train_batch_size == 2 and config.gradient_accumulation_steps == 4
    assert config.train_sampling_strategy == "group_by_length"
    assert sft_config(tmp_path, train_sampling_strategy="random").train_sampling_strategy == "random"


def test_length_grouped_batches_pad_less_than_random_ones(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The sampler sft_config picks by default: on the Alpaca sample set its batches carry fewer pad tokens."""
    from trl import SFTTrainer

    from kit.data import load_data, train_holdout_split
    from kit.formatting.chat_format import sft_dataset
    from kit.training.config import sft_config
    from kit.training.model import load_model

    model, tok = load_model(str(tiny_model_dir), max_seq_length=256, load_in_4bit=False, dtype="float32")
    records, _ = load_data("data/alpaca/alpaca_en.json", "alpaca")
    train, _ = train_holdout_split(records, holdout=0.2, seed=3407)
    dataset = sft_dataset(tok, train, "auto", max_seq_length=256)

    def useful(strategy: str) -> float:
        trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=dataset,
                             args=sft_config(tmp_path / strategy, max_seq_length=256, per_device_train_batch_size=8,
                                             train_sampling_strategy=strategy))
        batches = list(trainer.get_train_dataloader())
        return sum(int(b["attention_mask"].sum()) for b in batches) / sum(b["attention_mask"].numel() for b in batches)

    grouped, random = useful("group_by_length"), useful("random")
    assert grouped > random + 0.1  # measured on the tiny tokenizer: 0.85 against 0.65


def test_headless_disables_tqdm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kit.training.config import sft_config

    monkeypatch.setenv("KIT_HEADLESS", "1")
    assert sft_config(tmp_path).disable_tqdm is True
    monkeypatch.delenv("KIT_HEADLESS")
    assert sft_config(tmp_path).disable_tqdm is False


def test_write_metrics_schema(tmp_path: Path) -> None:
    from kit.runinfo import record_data_file, write_metrics

    data = tmp_path / "数据.jsonl"
    data.write_text('{"q": "你好"}\n', encoding="utf-8")
    record_data_file(data)

    history = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}, {"step": 2, "train_loss": 1.75}]
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=2, log_history=history))
    path = write_metrics(tmp_path / "out", notebook="x", trainer=trainer, runtime_s=1.23456, seed=7,
                         metrics={"bleu": 0.5, "nan": math.nan, "label": "微调后"})
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["loss_trace"] == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]
    assert payload["final_loss"] == 1.5 and payload["steps"] == 2 and payload["seed"] == 7
    assert payload["metrics"] == {"bleu": 0.5, "nan": None, "label": "微调后"}
    assert payload["device"]["type"] in {"cpu", "cuda"} and payload["peak_memory_mb"] > 0
    mine = [f for f in payload["data_files"] if Path(f["path"]) == data.resolve()]  # other tests read files too
    assert len(mine) == 1 and len(mine[0]["sha256"]) == 64 and mine[0]["bytes"] == data.stat().st_size
    assert "微调后" in path.read_text(encoding="utf-8")
