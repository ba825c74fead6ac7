"""Trainer configuration with our users' defaults, readable headless progress, checkpoints and resume.

Defaults follow the field's tutorials: batch 2, gradient accumulation 4, warmup 5, lr 2e-4, ``adamw_8bit``
(Unsloth's CPU fallback swaps it for fused AdamW), weight decay 0.01, linear schedule, seed 3407, bf16
where the hardware has it, else fp16 on GPU. Import unsloth (``kit.training.model``) before calling these: they import trl.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

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


def precision_flags(dtype: Any = None) -> dict[str, bool]:
    """``{"bf16": ..., "fp16": ...}`` for a CUDA run, following the model's dtype: fp16 -> fp16, bf16 -> bf16,
    fp32 -> neither. On CPU always neither: Unsloth's fallback trains in the model's own dtype, and bf16
    autocast over a bf16 model measured slower there (benchmarks/train_speed.py --autocast).

    ``dtype`` is a model, a torch dtype or its name; ``None`` means the model last loaded through
    :func:`kit.training.model.load_model`. Following the model matters on CUDA: Unsloth's patched trainers raise
    "Model is in float16 precision but you want to use bfloat16" for an fp16 model given bf16, and a float32
    model must not be put under autocast by us. With no model known: bf16 where the GPU has it, else fp16.
    """
    import sys

    import torch

    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False}
    if dtype is None:
        dtype = getattr(sys.modules.get("kit.training.model"), "last_loaded_dtype", None)
    elif not isinstance(dtype, (str, torch.dtype)):
        dtype = getattr(dtype, "dtype", None)
    name = str(dtype).replace("torch.", "") if dtype is not None else None
    if name in ("float16", "half"):
        return {"bf16": False, "fp16": True}
    if name == "bfloat16":
        return {"bf16": True, "fp16": False}
    if name in ("float32", "float"):
        return {"bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": not bf16}


def checkpoint_args(save_steps: int | None = 0, save_total_limit: int = 2) -> dict[str, Any]:
    """Trainer arguments for checkpoints: every ``save_steps`` optimizer steps when > 0 (keeping the newest
    ``save_total_limit``), else none. A checkpoint holds the adapter, optimizer, scheduler and RNG states,
    which is what an exact resume needs."""
    if not save_steps or int(save_steps) <= 0:
        return {"save_strategy": "no"}
    return {"save_strategy": "steps", "save_steps": int(save_steps), "save_total_limit": save_total_limit}


# Trackers the Trainer can report to, and the module each needs.
_TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio",
                    "comet_ml": "comet_ml", "clearml": "clearml", "dvclive": "dvclive"}


def tracking_args(report_to: str | list[str] | None = "none") -> dict[str, Any]:
    """``{"report_to": ...}`` with trackers whose package is missing dropped (one line each), ``None`` -> none.

    TensorBoard writes event files under ``output_dir/runs/`` with no network: ``pip install
    'unsloth-notebook-kit[tracking]'`` adds it.
    """
    import importlib.util

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    names = [n.strip() for n in names if n and n.strip() and n.strip() != "none"]
    kept = []
    for name in names:
        module = _TRACKER_MODULES.get(name, name)
        if importlib.util.find_spec(module) is None:
            hint = "unsloth-notebook-kit[tracking]" if name == "tensorboard" else module
            print(f"[tracking] report_to={name!r} needs the {module} package (pip install '{hint}'): not reporting to it")
            continue
        kept.append(name)
    return {"report_to": kept or "none"}


def resolve_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str | Path) -> str | None:
    """What to pass to ``trainer.train(resume_from_checkpoint=...)``: None (start fresh), ``"latest"`` (or True:
    the newest ``checkpoint-N`` under ``output_dir``; None with one line when there is none) or a folder."""
    from kit.errors import KitError

    if resume_from_checkpoint in (None, False, "", "none", "None"):
        return None
    if resume_from_checkpoint is True or str(resume_from_checkpoint).strip().lower() == "latest":
        found = [
            (int(d.name.split("-", 1)[1]), d)
            for d in Path(output_dir).glob("checkpoint-*")
            if d.is_dir() and d.name.split("-", 1)[1].isdigit() and (d / "trainer_state.json").is_file()
        ]
        if not found:
            print(f"[resume] no checkpoint-N in {output_dir}: training starts at step 0")
            return None
        step, newest = max(found)
        print(f"[resume] continuing from {newest} (step {step})")
        return str(newest)
    path = Path(str(resume_from_checkpoint)).expanduser()
    if not (path / "trainer_state.json").is_file():
        raise KitError(
            f"resume_from_checkpoint={resume_from_checkpoint!r}: not a checkpoint folder (no trainer_state.json); "
            "pass a checkpoint-N folder, 'latest' or None"
        )
    print(f"[resume] continuing from {path}")
    return str(path)


def _with_defaults(overrides: dict[str, Any]) -> dict[str, Any]:
    extra = {**checkpoint_args(overrides.pop("save_steps", 0))}
    if "report_to" in overrides:
        extra.update(tracking_args(overrides.pop("report_to")))
    args = {**COMMON_DEFAULTS, **precision_flags(), **extra, **overrides}
    # Headless runs get transformers' PrinterCallback (one line per logged step) instead of a tqdm bar.
    args.setdefault("disable_tqdm", is_headless())
    return args


# Batches of similar length pad little: on the sample sets, 79-85% of a random batch's tokens are real and about
# 97% of a length-grouped one's, and every padded token costs training time. transformers' LengthGroupedSampler
# still shuffles: random groups of up to 50 batches, each sorted by length. "random" turns it off.
GROUPED = {"train_sampling_strategy": "group_by_length"}


def sft_config(output_dir: str | Path, *, max_seq_length: int = 2048, **overrides: Any) -> Any:
    """``trl.SFTConfig`` with the defaults above and length-grouped batches (the dataset's ``input_ids`` lengths);
    ``max_seq_length`` maps to trl's ``max_length``."""
    from trl import SFTConfig

    overrides = {**GROUPED, **overrides}
    return SFTConfig(output_dir=str(output_dir), max_length=max_seq_length, **_with_defaults(overrides))


def dpo_config(output_dir: str | Path, *, max_seq_length: int = 1024, beta: float = 0.1, **overrides: Any) -> Any:
    """``trl.DPOConfig`` with the defaults above (lr 5e-6 unless given, as DPO wants a small one). Batches stay
    random: on the sample pairs, three length-grouped runs (28-36 steps) ended at 0.54 held-out reward accuracy,
    the random 40-step run at 0.63."""
    from trl import DPOConfig

    overrides.setdefault("learning_rate", 5e-6)
    return DPOConfig(output_dir=str(output_dir), max_length=max_seq_length, beta=beta, **_with_defaults(overrides))


def generation_batch_size(
    per_device: int, accumulation: int, num_generations: int, *, requested: int | None = None,
    world_size: int | None = None,
) -> int:
    """The GRPO generation batch trl 1.15 accepts: a multiple of the global batch (per-device batch x processes,
    ``WORLD_SIZE`` under ``accelerate launch``) and of ``num_generations``, at least ``requested``."""
    world = world_size or max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))
    global_batch = per_device * world
    wanted = requested or global_batch * accumulation
    step = math.lcm(global_batch, num_generations)
    return wanted if wanted % step == 0 else (wanted // step + 1) * step


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
    generation_batch = generation_batch_size(
        args["per_device_train_batch_size"], args["gradient_accumulation_steps"], num_generations,
        requested=args.pop("generation_batch_size", None),
    )
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
        k = max(1, len(values) // 10)  # means, not single noisy batches
        print(f"[loss] mean of the first {k} logged steps {sum(values[:k]) / k:.4f} -> of the last {k} "
              f"{sum(values[-k:]) / k:.4f} ({len(values)} logged steps)")
    return verdict
