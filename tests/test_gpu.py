"""GPU-only checks of Unsloth's CUDA path, the one the notebook defaults take: 4-bit QLoRA, dtype auto,
sequences of 512+ tokens (so "unsloth" gradient checkpointing offloads), fused LoRA kernels on a 16-bit base.
Skipped with a reason on machines without CUDA, never faked. Unsloth is imported before trl, as in every
notebook, so these test Unsloth's patched trainers and not stock TRL on a patched model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if torch.cuda.is_available():
    import unsloth  # noqa: F401  -- first, before anything imports trl (run this file alone: gpu_check.sh does)
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (Unsloth's CUDA path, bitsandbytes 4-bit)"),
]

SEQ_LEN = 512


@pytest.fixture(scope="module")
def shaped_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init SmolLM2-135M-shaped model (real widths: the fused kernels and bitsandbytes see real shapes)."""
    from kit.builders.shapes import build_random_model

    return build_random_model(tmp_path_factory.mktemp("smollm2-shape"), "smollm2-135m")


def _long_texts(tokenizer: object, n: int = 8) -> object:
    from datasets import Dataset

    sentence = "Below is an instruction that describes a task. Write a response that completes the request. "
    text = sentence * 64  # well past SEQ_LEN tokens; truncated to max_length
    assert len(tokenizer(text)["input_ids"]) > SEQ_LEN
    return Dataset.from_list([{"text": f"{i}: {text}{tokenizer.eos_token}"} for i in range(n)])


def _train(model: object, tokenizer: object, tmp_path: Path, steps: int = 3) -> object:
    import unsloth  # noqa: F401  -- before trl
    from trl import SFTTrainer

    from kit.training.config import sft_config

    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=_long_texts(tokenizer),
                         args=sft_config(tmp_path, max_seq_length=SEQ_LEN, max_steps=steps, warmup_steps=0,
                                         per_device_train_batch_size=2, gradient_accumulation_steps=1))
    trainer.train()
    return trainer


def test_qlora_4bit_dtype_auto_trains_at_512(shaped_model_dir: Path, tmp_path: Path) -> None:
    import unsloth  # noqa: F401  -- before trl

    from kit.training.methods import load_for_training

    model, tokenizer, summary = load_for_training(str(shaped_model_dir), max_seq_length=SEQ_LEN, load_in_4bit=True,
                                                  dtype=None)
    assert summary.device.startswith("cuda") and summary.load_in_4bit
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules())
    torch.cuda.reset_peak_memory_stats()
    trainer = _train(model, tokenizer, tmp_path)
    assert trainer.state.global_step == 3
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses and all(math.isfinite(v) for v in losses)
    # Precision followed the model: bf16 compute on a bf16 GPU, fp16 otherwise; never both.
    assert trainer.args.bf16 == torch.cuda.is_bf16_supported() and trainer.args.fp16 != trainer.args.bf16
    assert torch.cuda.max_memory_allocated() < 8 * 2**30  # a 135M-parameter QLoRA step at 2 x 512


def test_fp16_model_trains_without_the_bf16_error(shaped_model_dir: Path, tmp_path: Path) -> None:
    """Finding 1: an fp16 model given bf16 made Unsloth raise "Model is in float16 precision but you want to use bfloat16"."""
    import unsloth  # noqa: F401  -- before trl

    from kit.training.methods import load_for_training

    model, tokenizer, summary = load_for_training(str(shaped_model_dir), max_seq_length=SEQ_LEN, load_in_4bit=False,
                                                  dtype="float16")
    assert summary.dtype == "float16"
    trainer = _train(model, tokenizer, tmp_path, steps=2)
    assert trainer.args.fp16 and not trainer.args.bf16
    assert trainer.state.global_step == 2


def test_bf16_lora_16bit_base_trains(shaped_model_dir: Path, tmp_path: Path) -> None:
    """A 16-bit (not float32) base, so Unsloth's fused LoRA kernels are the ones that run."""
    import unsloth  # noqa: F401  -- before trl

    from kit.training.methods import load_for_training

    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    model, tokenizer, summary = load_for_training(str(shaped_model_dir), max_seq_length=SEQ_LEN, load_in_4bit=False,
                                                  dtype="bfloat16")
    assert summary.dtype == "bfloat16" and not summary.load_in_4bit
    trainer = _train(model, tokenizer, tmp_path, steps=2)
    assert trainer.args.bf16 and trainer.state.global_step == 2
