"""The fine-tuning methods the tutorials teach, by name: what each needs, its default learning rate, how it is built.

``lora`` and ``dora`` go through Unsloth's ``FastLanguageModel.get_peft_model`` (DoRA as ``use_dora=True``);
``qlora`` and ``lora_8bit`` are LoRA on a 4-bit / 8-bit bitsandbytes base (CUDA only); ``full`` trains every
weight through ``from_pretrained(full_finetuning=True)``; ``prefix``, ``prompt``, ``ia3``, ``loha`` and ``lokr``
are PEFT configs applied with ``peft.get_peft_model``. :func:`check_method` refuses a method that cannot run
here in one line (a :class:`KitError`) before anything is loaded: never a silent fall-back to another method.
Adapter methods save adapters (``adapter_config.json``, which notebook 05 loads); ``full`` saves a checkpoint.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kit.errors import KitError

if TYPE_CHECKING:
    from kit.training.model import ModelSummary

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
IA3_TARGETS = ("k_proj", "v_proj", "down_proj")
NEEDS_BNB = "needs CUDA + bitsandbytes"


@dataclass(frozen=True)
class Method:
    """One way to fine-tune: how it loads, what it trains, its default learning rate and how it saves."""

    name: str
    summary: str
    learning_rate: float  # a sensible default for a short run; the plan overrides it
    load: dict[str, Any] = field(default_factory=dict)  # extra from_pretrained arguments
    builder: str = "lora"  # lora (Unsloth get_peft_model), peft (a PEFT config), none (full fine-tuning)
    needs_bnb: bool = False  # 4-/8-bit bitsandbytes weights: CUDA only
    estimate_as: str = "lora"  # the kit.training.memory.estimate_memory method

    @property
    def saves(self) -> str:
        """``adapter`` (a small adapter folder) or ``checkpoint`` (every weight)."""
        return "checkpoint" if self.builder == "none" else "adapter"


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("lora", "LoRA: low-rank updates on every attention and MLP projection", 2e-4),
    Method("qlora", "LoRA on a 4-bit NF4 base (bitsandbytes)", 2e-4, {"load_in_4bit": True}, needs_bnb=True,
           estimate_as="qlora"),
    Method("lora_8bit", "LoRA on an 8-bit base (bitsandbytes LLM.int8)", 2e-4,
           {"load_in_4bit": False, "load_in_8bit": True}, needs_bnb=True, estimate_as="lora_8bit"),
    Method("dora", "DoRA: LoRA with a learned magnitude per output (use_dora=True)", 2e-4, estimate_as="dora"),
    Method("full", "full fine-tuning: every weight trained (full_finetuning=True)", 2e-5,
           {"load_in_4bit": False, "full_finetuning": True}, builder="none", estimate_as="full"),
    Method("prefix", "prefix tuning: trained key/value prefixes in every layer", 1e-2, builder="peft",
           estimate_as="prefix"),
    Method("prompt", "prompt tuning: trained virtual tokens before the input", 3e-2, builder="peft",
           estimate_as="prompt"),
    Method("ia3", "IA3: learned scaling of keys, values and the MLP", 3e-3, builder="peft", estimate_as="ia3"),
    Method("loha", "LoHa: low-rank Hadamard product updates", 2e-4, builder="peft", estimate_as="loha"),
    Method("lokr", "LoKr: low-rank Kronecker product updates", 2e-4, builder="peft", estimate_as="lokr"),
)}
NUM_VIRTUAL_TOKENS = 20
PROMPT_INIT_TEXT = "Answer the instruction helpfully, accurately and concisely."


def get_method(name: str) -> Method:
    """The registry entry for ``name``; an unknown name is one line listing the known ones."""
    key = str(name).strip().lower()
    if key not in METHODS:
        raise KitError(f"method {name!r} is unknown; choose one of {', '.join(METHODS)}")
    return METHODS[key]


def why_not(name: str) -> str | None:
    """Why ``name`` cannot run on this machine (one line), or None when it can. Loads nothing."""
    method = get_method(name)
    if method.needs_bnb:
        import torch

        if not torch.cuda.is_available():
            return f"{method.name} {NEEDS_BNB}: no CUDA GPU is visible"
        if importlib.util.find_spec("bitsandbytes") is None:
            return f"{method.name} {NEEDS_BNB}: bitsandbytes is not installed (pip install bitsandbytes)"
    if method.builder == "peft" and importlib.util.find_spec("peft") is None:
        return f"{method.name} needs peft (pip install peft)"
    return None


def check_method(name: str) -> Method:
    """The method, or a :class:`KitError` naming why it cannot run here, raised before anything is loaded."""
    reason = why_not(name)
    if reason is not None:
        raise KitError(f"[method] {reason}; choose another method (lora, dora, full, prefix, ...), never swapped silently")
    return get_method(name)


def learning_rate_for(name: str, overrides: dict[str, float] | None = None) -> float:
    """The plan's learning rate for ``name`` when it gives one (``learning_rates``), else the method's default."""
    method = get_method(name)
    value = (overrides or {}).get(method.name)
    if value is None:
        return method.learning_rate
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise KitError(f"learning_rates[{method.name!r}] = {value!r}: give a positive number such as 2e-4")
    return float(value)


def load_kwargs(name: str, load_in_4bit: bool = False) -> dict[str, Any]:
    """``from_pretrained`` arguments for the method; ``load_in_4bit`` is kept only where the method trains a 4-bit base
    (lora as before, qlora); other methods load 16-bit weights and say so when 4-bit was asked for."""
    method = get_method(name)
    if method.name == "lora":
        return {"load_in_4bit": bool(load_in_4bit)}
    if load_in_4bit and not method.needs_bnb:
        print(f"[method] {method.name} loads 16-bit weights: load_in_4bit=True applies to lora/qlora only")
    return {"load_in_4bit": False, **method.load}


def peft_config(name: str, model_name: str = "", *, r: int = 16, alpha: int = 16, seed: int = 3407) -> Any:
    """The PEFT config of a ``peft``-built method (prefix, prompt, ia3, loha, lokr) for a causal LM."""
    import peft

    method = get_method(name)
    if method.name == "prefix":
        return peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=NUM_VIRTUAL_TOKENS)
    if method.name == "prompt":
        init = {"prompt_tuning_init": "TEXT", "prompt_tuning_init_text": PROMPT_INIT_TEXT,
                "tokenizer_name_or_path": model_name} if model_name else {}
        return peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=NUM_VIRTUAL_TOKENS, **init)
    if method.name == "ia3":
        return peft.IA3Config(task_type="CAUSAL_LM", target_modules=list(IA3_TARGETS),
                              feedforward_modules=["down_proj"])
    if method.name == "loha":
        return peft.LoHaConfig(task_type="CAUSAL_LM", r=r, alpha=alpha, target_modules=list(LORA_TARGETS))
    if method.name == "lokr":
        return peft.LoKrConfig(task_type="CAUSAL_LM", r=r, alpha=alpha, target_modules=list(LORA_TARGETS))
    raise KitError(f"method {method.name!r} is not built from a PEFT config")


def build(model: Any, name: str, *, model_name: str = "", r: int = 16, alpha: int = 16, seed: int = 3407,
          use_gradient_checkpointing: bool | str = "unsloth", **lora_kwargs: Any) -> Any:
    """Put the method's trainable parts on a loaded model: LoRA/DoRA through Unsloth, the PEFT methods through
    ``peft.get_peft_model``; ``full`` returns the model as loaded (``full_finetuning=True`` made it trainable)."""
    method = get_method(name)
    if method.builder == "none":
        return model
    if method.builder == "lora":
        from kit.training.model import add_lora

        extra = {"use_dora": True} if method.name == "dora" else {}
        return add_lora(model, r=r, lora_alpha=alpha, random_state=seed,
                        use_gradient_checkpointing=use_gradient_checkpointing, **extra, **lora_kwargs)
    import peft
    import torch

    torch.manual_seed(seed)
    # PEFT refuses prefix tuning under gradient checkpointing (its cached prefixes break recomputation).
    if method.name == "prefix":
        if getattr(model, "is_gradient_checkpointing", False):
            model.gradient_checkpointing_disable()
    elif use_gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    model.config.use_cache = False
    return peft.get_peft_model(model, peft_config(method.name, model_name, r=r, alpha=alpha, seed=seed))


def load_for_training(
    model_name: str,
    max_seq_length: int = 2048,
    load_in_4bit: bool = True,
    lora_r: int = 16,
    lora_alpha: int = 16,
    dtype: str | None = "auto",
    seed: int = 3407,
    fast_inference: bool = False,
    method: str = "lora",
    **lora_kwargs: Any,
) -> tuple[Any, Any, ModelSummary]:
    """Load, put the fine-tuning ``method`` on the model (LoRA by default; :data:`METHODS` lists the others)
    and print a one-line summary: ``(model, tokenizer, summary)``. A method that cannot run here (4-/8-bit without
    CUDA and bitsandbytes) stops with one line before anything is loaded; ``full`` prints its checkpoint size."""
    from kit.training import model as loader

    chosen = check_method(method)
    extra = {"fast_inference": True, "max_lora_rank": lora_r} if fast_inference else {}
    model, tokenizer = loader.load_model(model_name, max_seq_length=max_seq_length, dtype=dtype,
                                         **load_kwargs(chosen.name, load_in_4bit), **extra)
    model = build(model, chosen.name, model_name=loader.resolve_model_name(model_name), r=lora_r, alpha=lora_alpha,
                  seed=seed, **lora_kwargs)
    summary = loader.describe(model, model_name)
    print(f"[model] {summary}" + ("" if chosen.name == "lora" else f", method {chosen.name}"))
    warning = size_warning(chosen.name, summary.total_params, summary.dtype)
    if warning:
        print(warning)
    return model, tokenizer, summary


def trainer_overrides(name: str) -> dict[str, Any]:
    """Trainer arguments a method needs: prefix tuning runs without gradient checkpointing (PEFT refuses it)."""
    return {"gradient_checkpointing": False} if get_method(name).name == "prefix" else {}


def base_weights(model: Any) -> Any:
    """A context manager under which ``model`` answers as its base model: ``disable_adapter()`` for an adapter
    method; for ``full`` (no adapter to switch off) nothing, so call it before training (the weights are the base's)."""
    import contextlib

    disable = getattr(model, "disable_adapter", None)
    return disable() if callable(disable) else contextlib.nullcontext()


def estimate_method(name: str, load_in_4bit: bool = False) -> str:
    """The :func:`kit.training.memory.estimate_memory` method for a notebook's ``method`` (``lora`` on a 4-bit base is
    ``qlora``, as the notebooks' ``load_in_4bit`` means)."""
    method = get_method(name)
    return "qlora" if method.name == "lora" and load_in_4bit else method.estimate_as


def checkpoint_bytes(total_params: int, dtype: str) -> int:
    """Bytes a full checkpoint of ``total_params`` takes in ``dtype`` (safetensors, weights only)."""
    return int(total_params) * (4 if "32" in str(dtype) else 2)


def size_warning(name: str, total_params: int, dtype: str) -> str | None:
    """For ``full``: the line saying how big its saved checkpoint will be (printed before training), else None."""
    if get_method(name).saves != "checkpoint":
        return None
    size = checkpoint_bytes(total_params, dtype)
    shown = f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"
    return (f"[method] full fine-tuning saves every weight: a {shown} checkpoint ({total_params:,} params in "
            f"{dtype}), not a few-MB adapter")


SAVED_PATTERNS = ("*.safetensors", "*.bin", "adapter_config.json", "config.json")  # what "size on disk" counts


def save(model: Any, tokenizer: Any, output_dir: str, name: str) -> int:
    """Save the trained model the method's way (an adapter folder, or a full checkpoint for ``full``); returns
    the bytes of its weights and configs on disk (:data:`SAVED_PATTERNS`; the tokenizer is not counted)."""
    from pathlib import Path

    out = Path(output_dir)
    model.save_pretrained(str(out))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return sum(p.stat().st_size for pattern in SAVED_PATTERNS for p in out.glob(pattern) if p.is_file())


def reload(output_dir: str, name: str, *, max_seq_length: int = 2048, dtype: str | None = "auto") -> tuple[Any, Any]:
    """Load what :func:`save` wrote: the checkpoint (``full``), the base with the adapter on top through
    ``FastLanguageModel.from_pretrained`` (LoRA-family adapters, as notebook 05 does), or the base and then
    ``PeftModel.from_pretrained`` (prefix/prompt/IA3/LoHa/LoKr: PEFT loads prompt-learning adapters frozen)."""
    import json
    from pathlib import Path

    from kit.training.model import load_model

    method = get_method(name)
    extra = {k: v for k, v in method.load.items() if k == "load_in_8bit"}  # full reloads for inference
    if method.builder != "peft":
        return load_model(output_dir, max_seq_length=max_seq_length, load_in_4bit=method.name == "qlora",
                          dtype=dtype, **extra)
    config_path = Path(output_dir) / "adapter_config.json"
    if not config_path.is_file():
        raise KitError(f"{output_dir}: no adapter_config.json; save the {method.name} adapter there first")
    base = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise KitError(f"{config_path}: no base_model_name_or_path; cannot tell which model the adapter belongs to")
    from peft import PeftModel

    model, tokenizer = load_model(base, max_seq_length=max_seq_length, load_in_4bit=False, dtype=dtype)
    return PeftModel.from_pretrained(model, output_dir), tokenizer
