"""Load a model for training through Unsloth's ``FastLanguageModel`` and add LoRA, with the field's defaults.

This is the one place the kit touches ``FastLanguageModel.from_pretrained`` and ``get_peft_model``.
On CUDA it is Unsloth's fast path (4-bit, fused kernels); on a machine without an accelerator Unsloth
2026.10 falls back to stock transformers + PEFT, so the same notebook cell runs everywhere.
Unsloth must be imported before trl (it patches trl's trainers); importing this module does that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import unsloth  # noqa: F401  -- first, on purpose: it patches transformers, peft and trl when imported

# Every attention and MLP projection, as Unsloth's notebooks use.
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# The compute dtype of the model last loaded by load_model ("bfloat16", ...): kit.training.config.precision_flags
# follows it, so a trainer config built after loading never asks for a precision the model is not in.
last_loaded_dtype: str | None = None
# How the last load chose its dtype: {"asked": "auto", "dtype": "float32", "reason": "cpu: AVX2, ..."}
# (kit.runinfo.device_info records it in metrics.json, and so in the batch manifest).
last_precision: dict[str, str] | None = None


def import_unsloth() -> Any:
    """``FastLanguageModel`` (unsloth itself is imported with this module, before trl, which it patches)."""
    from unsloth import FastLanguageModel

    return FastLanguageModel


def resolve_model_name(model_name: str) -> str:
    """A local checkpoint folder (relative to the working directory or the repository) as an absolute
    path; a hub id such as ``unsloth/Qwen2.5-0.5B-Instruct`` unchanged."""
    from kit.paths import resolve_path

    local = resolve_path(model_name)
    return str(local) if local.is_dir() else model_name


@dataclass(frozen=True)
class ModelSummary:
    """What was loaded: device, dtype, parameter counts, and whether weights are 4-bit."""

    model_name: str
    device: str
    dtype: str
    trainable_params: int
    total_params: int
    load_in_4bit: bool

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / self.total_params if self.total_params else 0.0

    def __str__(self) -> str:
        return (
            f"{self.model_name}: device={self.device}, dtype={self.dtype}, 4-bit={self.load_in_4bit}, "
            f"trainable {self.trainable_params:,} of {self.total_params:,} parameters "
            f"({100 * self.trainable_share:.2f}%)"
        )


def describe(model: Any, model_name: str = "") -> ModelSummary:
    """Count trainable and total parameters and report where and in what dtype the model lives."""
    trainable = total = 0
    for param in model.parameters():
        count = param.numel()
        # bitsandbytes packs two 4-bit values per byte: count the logical parameters.
        if getattr(param, "quant_state", None) is not None or type(param).__name__ == "Params4bit":
            count *= 2
        total += count
        if param.requires_grad:
            trainable += count
    first = next(model.parameters())
    quantized = any(type(m).__name__ == "Linear4bit" for m in model.modules())
    dtype = getattr(model, "dtype", first.dtype)
    return ModelSummary(
        model_name=model_name or getattr(getattr(model, "config", None), "_name_or_path", ""),
        device=str(first.device),
        dtype=str(dtype).replace("torch.", ""),
        trainable_params=trainable,
        total_params=total,
        load_in_4bit=quantized,
    )


def load_model(
    model_name: str,
    max_seq_length: int = 2048,
    load_in_4bit: bool = True,
    dtype: str | None = "auto",
    fast_inference: bool = False,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """``FastLanguageModel.from_pretrained`` with a local-path fallback; returns ``(model, tokenizer)``.

    ``dtype="auto"`` (or None) picks the precision the device computes fast (:func:`kit.runtime.precision.resolve_dtype`):
    on CPU bf16 only with native bf16 instructions, else float32; on CUDA bf16 where supported, else fp16.
    The choice and its reason are printed once per process and recorded in ``metrics.json`` (``device``).
    ``fast_inference=True`` asks for Unsloth's vLLM generation (:func:`fast_inference_args`).
    """
    if fast_inference:
        rank = kwargs.pop("max_lora_rank", 16)
        kwargs = {**kwargs, **fast_inference_args(rank)}
    fast = import_unsloth()
    import torch

    torch_dtype = getattr(torch, choose_dtype(dtype))
    model, tokenizer = fast.from_pretrained(
        model_name=resolve_model_name(model_name),
        max_seq_length=max_seq_length,
        dtype=torch_dtype,
        load_in_4bit=load_in_4bit,
        **kwargs,
    )
    global last_loaded_dtype
    last_loaded_dtype = compute_dtype(model)
    return model, tokenizer


def choose_dtype(dtype: Any = "auto") -> str:
    """The dtype name to load in (:func:`kit.runtime.precision.resolve_dtype`); an automatic choice is printed once per
    process with its reason ("[precision] cpu: AVX2, no native bf16 -> float32") and kept in ``last_precision``."""
    from kit.runtime.precision import resolve_dtype

    global last_precision
    name, reason = resolve_dtype(dtype)
    choice = {"asked": "auto" if dtype is None else str(dtype).replace("torch.", ""), "dtype": name, "reason": reason}
    if choice != last_precision and not reason.endswith("as asked"):
        print(f"[precision] {reason}")
    last_precision = choice
    return name


def compute_dtype(model: Any) -> str:
    """The dtype a loaded model computes in: the 4-bit compute dtype for a bitsandbytes model, else its own."""
    quant = getattr(getattr(model, "config", None), "quantization_config", None)
    if quant is not None:
        value = quant.get("bnb_4bit_compute_dtype") if isinstance(quant, dict) else getattr(quant, "bnb_4bit_compute_dtype", None)
        if value is not None:
            return str(value).replace("torch.", "")
    return str(getattr(model, "dtype", "")).replace("torch.", "")


def add_lora(
    model: Any,
    r: int = 16,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    target_modules: tuple[str, ...] | list[str] = DEFAULT_TARGET_MODULES,
    use_gradient_checkpointing: bool | str = "unsloth",
    random_state: int = 3407,
    **kwargs: Any,
) -> Any:
    """``FastLanguageModel.get_peft_model`` with Unsloth's notebook defaults; every argument overridable."""
    fast = import_unsloth()
    return fast.get_peft_model(
        model,
        r=r,
        target_modules=list(target_modules),
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        bias="none",
        use_gradient_checkpointing=use_gradient_checkpointing,
        random_state=random_state,
        use_rslora=False,
        loftq_config=None,
        **kwargs,
    )


def fast_inference_args(max_lora_rank: int = 16, gpu_memory_utilization: float = 0.6) -> dict[str, Any]:
    """``from_pretrained`` arguments for Unsloth's vLLM generation (GRPO samples much faster): on a CUDA GPU
    with vllm installed; elsewhere none, with one line saying why (generation then uses transformers)."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        print("[model] fast_inference ignored: vLLM generation needs a CUDA GPU; generating with transformers")
        return {}
    if importlib.util.find_spec("vllm") is None:
        print("[model] fast_inference ignored: vllm is not installed (pip install vllm); generating with transformers")
        return {}
    return {"fast_inference": True, "max_lora_rank": max_lora_rank, "gpu_memory_utilization": gpu_memory_utilization}


def for_inference(model: Any) -> Any:
    """Switch a model to generation mode the Unsloth way (``FastLanguageModel.for_inference``)."""
    fast = import_unsloth()
    return fast.for_inference(model)


def for_training(model: Any) -> Any:
    """Switch back to training mode after generating (``FastLanguageModel.for_training``)."""
    fast = import_unsloth()
    return fast.for_training(model)

