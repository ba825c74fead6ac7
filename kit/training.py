"""Trainer configuration with our users' defaults, readable headless progress, checkpoints and resume.

Defaults follow the field's tutorials: batch 2, gradient accumulation 4, warmup 5, lr 2e-4, ``adamw_8bit``
(Unsloth's CPU fallback swaps it for fused AdamW), weight decay 0.01, linear schedule, seed 3407, bf16
where the hardware has it, else fp16 on GPU. Import unsloth (``kit.model``) before calling these: they import trl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.plots import plot_loss  # noqa: F401  -- re-exported: notebooks import it from here
from kit.runinfo import is_headless

COMMON_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 4,
    "warmup_steps": 5,
    "max_steps": 60,
    "learning_rate": 2e-4,
    "optim": "adamw_8bit",
    "weight_decay": 0.01,
    "lr_scheduler_type": "linear",
    "seed": 3407,
    "logging_steps": 1,
    "report_to": "none",
    "save_strategy": "no",
}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) so a re-run repeats its numbers.

    Deliberately without ``transformers.set_seed``: transformers must not be imported before unsloth.
    """
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def precision_flags() -> dict[str, bool]:
    """``{"bf16": ..., "fp16": ...}``: bf16 where supported (Ampere+ GPUs, modern CPUs), else fp16 on GPU."""
    import torch

    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported()
        return {"bf16": bf16, "fp16": not bf16}
    return {"bf16": False, "fp16": False}  # CPU: Unsloth's fallback picks its own autocast from the model dtype


def _with_defaults(overrides: dict[str, Any]) -> dict[str, Any]:
    args = {**COMMON_DEFAULTS, **precision_flags(), **overrides}
    # Headless runs get transformers' PrinterCallback (one line per logged step) instead of a tqdm bar.
    args.setdefault("disable_tqdm", is_headless())
    return args


def sft_config(output_dir: str | Path, *, max_seq_length: int = 2048, **overrides: Any) -> Any:
    """``trl.SFTConfig`` with the defaults above; ``max_seq_length`` maps to trl's ``max_length``."""
    from trl import SFTConfig

    return SFTConfig(output_dir=str(output_dir), max_length=max_seq_length, **_with_defaults(overrides))


def dpo_config(output_dir: str | Path, *, max_seq_length: int = 1024, beta: float = 0.1, **overrides: Any) -> Any:
    """``trl.DPOConfig`` with the defaults above (lr 5e-6 unless given, as DPO wants a small one)."""
    from trl import DPOConfig

    overrides.setdefault("learning_rate", 5e-6)
    return DPOConfig(output_dir=str(output_dir), max_length=max_seq_length, beta=beta, **_with_defaults(overrides))


def grpo_config(
    output_dir: str | Path,
    *,
    num_generations: int = 6,
    max_completion_length: int = 256,
    **overrides: Any,
) -> Any:
    """``trl.GRPOConfig`` with the defaults above; makes ``generation_batch_size`` divisible by
    ``num_generations`` (trl 1.15 requires it) by raising it to the next multiple when needed."""
    from trl import GRPOConfig

    args = _with_defaults({"learning_rate": 5e-6, **overrides})
    batch = args["per_device_train_batch_size"] * args["gradient_accumulation_steps"]
    generation_batch = args.pop("generation_batch_size", None) or batch
    if generation_batch % num_generations:
        generation_batch = (generation_batch // num_generations + 1) * num_generations
    return GRPOConfig(
        output_dir=str(output_dir),
        num_generations=num_generations,
        max_completion_length=max_completion_length,
        generation_batch_size=generation_batch,
        **args,
    )


def check_loss(log_history: list[dict[str, Any]], key: str = "loss") -> dict[str, Any]:
    """Sanity of a finished run: finite losses and whether the loss fell; prints what to try if not."""
    import math

    values = [e[key] for e in log_history if key in e]
    finite = all(math.isfinite(v) for v in values)
    fell = len(values) >= 2 and values[-1] < values[0]
    verdict = {"points": len(values), "first": values[0] if values else None,
               "last": values[-1] if values else None, "finite": finite, "fell": fell}
    if not finite:
        print("[loss] NaN/inf loss: lower the learning rate, use bf16 instead of fp16, or check for empty labels.")
    elif values and not fell:
        print("[loss] the loss did not fall: check the data format (check_formatting), then the learning rate.")
    else:
        print(f"[loss] {verdict['first']:.4f} -> {verdict['last']:.4f} over {len(values)} logged steps")
    return verdict
