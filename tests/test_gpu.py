"""GPU-only checks of Unsloth's CUDA path. Skipped with a reason on machines without CUDA, never faked."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (Unsloth's CUDA path, bitsandbytes 4-bit)"),
]


def test_qlora_loads_in_4bit_and_trains(tiny_model_dir: Path, tmp_path: Path) -> None:
    from datasets import Dataset
    from trl import SFTTrainer

    from kit.model import load_for_training
    from kit.training import sft_config

    model, tokenizer, summary = load_for_training(str(tiny_model_dir), max_seq_length=128, load_in_4bit=True)
    assert summary.device.startswith("cuda")
    data = Dataset.from_list([{"prompt": f"Q{i}: ", "completion": f"A{i}" + tokenizer.eos_token} for i in range(8)])
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=data,
                         args=sft_config(tmp_path, max_seq_length=128, max_steps=2, per_device_train_batch_size=2,
                                         gradient_accumulation_steps=1))
    trainer.train()
    assert trainer.state.global_step == 2
