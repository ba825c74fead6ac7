"""Estimate GPU memory for inference, full fine-tuning, LoRA and QLoRA before loading anything.

All sizes are GiB (2**30 bytes, as ``torch.cuda`` reports them); ``params`` is the parameter count ``P``,
``s`` the sequence length, ``b`` the batch, ``h`` hidden size, ``i`` MLP width, ``L`` layers, ``a``
attention heads, ``V`` vocabulary. The estimate is the sum of six parts:

* **weights** -- 2 bytes/param for bf16/fp16, 4 for fp32. Quantised loads (bitsandbytes) quantise the
  linear layers only; embeddings and an untied ``lm_head`` (``V*h`` each) stay 16-bit. 8-bit: 1 byte.
  4-bit NF4: 0.5 byte plus the blockwise absmax constants: one fp32 per 64 weights = 0.5 bit/param,
  or with double quantisation (Unsloth's default) 8/64 + 32/(64*256) = 0.127 bit/param (QLoRA paper).
* **adapter** -- LoRA weights: ``r*(in+out)`` per targeted projection per layer, kept in fp32 (PEFT casts
  adapters to fp32 by default). Default targets: q,k,v,o,gate,up,down, as in Unsloth's notebooks.
* **gradients** -- one per trainable parameter: fp32 for adapters; for full fine-tuning fp32 in mixed
  precision (``mixed_precision=True``: a 16-bit working copy, fp32 gradients and fp32 master weights, as in
  Megatron/DeepSpeed bf16 training), or in the weight dtype otherwise (pure bf16, Unsloth's
  ``full_finetuning``).
* **optimizer** -- per trainable parameter: AdamW 8 bytes (two fp32 moments), 8-bit Adam 2 bytes, Lion 4,
  SGD/Adafactor ~0; full fine-tuning in mixed precision adds the 4-byte fp32 master weights here.
  Full fine-tuning of 7B with AdamW in mixed precision is therefore 2+4+4+8 = 18 bytes/param ~ 117 GiB.
* **activations** -- training, per layer without gradient checkpointing, after Korthikanti et al. 2022
  ("Reducing Activation Recomputation in Large Transformer Models", eq. 1: ``s*b*h*(34 + 5*a*s/h)`` bytes
  for a GPT layer with a 4h GeLU MLP): ``s*b*h*(17 + m) + 5*a*s*s*b`` where ``m`` is the MLP share
  ``8*i/h`` for gated MLPs (SwiGLU keeps four ``i``-wide 16-bit tensors) or ``1 + 4*i/h`` otherwise (= 34
  in total for GPT). The ``5*a*s*s*b`` attention-score term is dropped with flash/SDPA attention
  (``flash_attention=True``, Unsloth's default). With gradient checkpointing only each layer's 16-bit input
  (``2*s*b*h``) is kept, plus one layer's full activations while it is recomputed; Unsloth's
  ``"unsloth"`` mode offloads the kept inputs to CPU RAM. Add the logits: ``s*b*V`` elements at 2 bytes
  with a fused/chunked loss (Unsloth), or 10 bytes (16-bit logits, fp32 upcast and its gradient) without.
  QLoRA adds one dequantised 16-bit copy of the largest projection. Inference instead holds the KV cache
  ``2*L*kv_heads*head_dim*s*b*2`` bytes plus one layer's forward working set ``s*b*(4h + 3i)*2`` bytes.
* **overhead** -- CUDA context, cuBLAS workspaces and allocator fragmentation: 0.75 GiB by default
  (the context alone is 0.3-0.5 GiB and is not counted by ``torch.cuda.max_memory_reserved``).

When the shape is unknown it is inferred from ``P`` for a Llama-style dense decoder: ``P ~ 12*L*h^2 +
2*V*h`` with ``h = 128*L`` (true of Llama-7B/13B and Qwen2.5-7B), head_dim 128, ``i = 8h/3``,
``V = 32000`` untied (Llama-2/Mistral); pass ``hidden_size``/``num_layers``/``vocab_size`` or a config for
better numbers (modern 128k-152k vocabularies add 1-2 GiB of 16-bit embeddings to a 4-bit 7B model).
These are planning numbers (typically within 20-30 % of a measured peak), not guarantees.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.paths import resolve_path
from kit.runtime.precision import resolve_dtype

GIB = 2**30
METHODS = ("inference", "full", "lora", "qlora", "lora_8bit", "dora", "prefix", "prompt", "ia3", "loha", "lokr")
# Adapter methods other than LoRA: how many parameters they train (kit.training.methods builds them).
PEFT_METHODS = ("dora", "prefix", "prompt", "ia3", "loha", "lokr")
NUM_VIRTUAL_TOKENS = 20  # prefix / prompt tuning, as kit.training.methods builds them
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DEFAULT_OVERHEAD_GB = 0.75
DEFAULT_VOCAB = 32000

_DTYPE_BYTES = {
    "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2, "half": 2,
    "fp32": 4, "float32": 4, "float": 4, "auto": 2,
}  # fmt: skip
_QUANT_ALIASES = {
    "4bit": "4bit",
    "nf4": "4bit",
    "fp4": "4bit",
    "int4": "4bit",
    "8bit": "8bit",
    "int8": "8bit",
}
# Well-known shapes, used for hub ids that have no local config.json (nothing is ever downloaded).
_SHAPE_KEYS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "vocab_size", "tie_word_embeddings",
)  # fmt: skip
_KNOWN_SHAPES: dict[str, dict[str, Any]] = {
    name: dict(zip(_SHAPE_KEYS, values, strict=True))
    for name, values in {
        # name:          (hidden, layers, heads, kv heads, mlp, vocab, tied embeddings)
        "Qwen2.5-0.5B":  (896, 24, 14, 2, 4864, 151936, True),
        "Qwen2.5-1.5B":  (1536, 28, 12, 2, 8960, 151936, True),
        "Qwen2.5-3B":    (2048, 36, 16, 2, 11008, 151936, True),
        "Qwen2.5-7B":    (3584, 28, 28, 4, 18944, 152064, False),
        "Qwen2.5-14B":   (5120, 48, 40, 8, 13824, 152064, False),
        "Qwen2.5-32B":   (5120, 64, 40, 8, 27648, 152064, False),
        "Llama-3.2-1B":  (2048, 16, 32, 8, 8192, 128256, True),
        "Llama-3.2-3B":  (3072, 28, 24, 8, 8192, 128256, True),
        "Llama-3.1-8B":  (4096, 32, 32, 8, 14336, 128256, False),
        "Llama-3.1-70B": (8192, 80, 64, 8, 28672, 128256, False),
        "Llama-2-7B":    (4096, 32, 32, 32, 11008, 32000, False),
        "Llama-2-13B":   (5120, 40, 40, 40, 13824, 32000, False),
        "Mistral-7B":    (4096, 32, 32, 8, 14336, 32768, False),
    }.items()
}  # fmt: skip
# Model families in hub ids -> the prefix of their rows in _KNOWN_SHAPES.
_FAMILIES = (
    (re.compile(r"qwen\s*2"), "Qwen2.5"),
    (re.compile(r"llama[-_ ]?3"), "Llama-3"),
    (re.compile(r"llama[-_ ]?2"), "Llama-2"),
    (re.compile(r"mistral"), "Mistral"),
)
_NON_GATED = {"gpt2", "gpt_neox", "gptj", "gpt_bigcode", "opt", "bloom", "falcon", "phi", "starcoder2"}


@dataclass(frozen=True)
class ModelShape:
    """The numbers the activation and LoRA formulas need; ``inferred`` marks a guess from the parameter count."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tied_embeddings: bool = False
    gated_mlp: bool = True
    head_dim: int | None = None
    inferred: bool = False

    @property
    def dim_per_head(self) -> int:
        """Per-head width: the config's ``head_dim``, else ``hidden_size / num_heads``."""
        return self.head_dim or max(1, self.hidden_size // max(1, self.num_heads))

    def parameter_count(self) -> int:
        """Parameters of a dense decoder of this shape: embeddings, attention, MLP and norms."""
        h, i, hd = self.hidden_size, self.intermediate_size, self.dim_per_head
        attention = 2 * h * self.num_heads * hd + 2 * h * self.num_kv_heads * hd
        mlp = (3 if self.gated_mlp else 2) * h * i
        per_layer = attention + mlp + 2 * h
        embeddings = self.vocab_size * h * (1 if self.tied_embeddings else 2)
        return int(self.num_layers * per_layer + embeddings + h)


@dataclass
class MemoryEstimate:
    """GPU memory for one run, by part (GiB); ``total_gb`` is their sum. ``assumptions`` records the inputs."""

    method: str
    params: int
    weights_gb: float
    adapter_gb: float
    trainable_params: int
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    overhead_gb: float
    assumptions: dict[str, Any] = field(default_factory=dict)

    def parts(self) -> dict[str, float]:
        """The memory parts in GiB, in display order."""
        return {
            "weights_gb": self.weights_gb,
            "adapter_gb": self.adapter_gb,
            "gradients_gb": self.gradients_gb,
            "optimizer_gb": self.optimizer_gb,
            "activations_gb": self.activations_gb,
            "overhead_gb": self.overhead_gb,
        }

    @property
    def total_gb(self) -> float:
        """Sum of the parts."""
        return sum(self.parts().values())

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``total_gb`` (JSON-friendly, for metrics.json)."""
        out = asdict(self)
        out["total_gb"] = self.total_gb
        return out

    def table(self) -> str:
        """A small fixed-width table of the parts and the total."""
        title = (
            f"{self.method} | {_human_count(self.params)} params | "
            f"seq {self.assumptions.get('seq_len')} x batch {self.assumptions.get('batch')}"
        )
        labels = {
            "weights_gb": f"weights ({self.assumptions.get('weight_format', '?')})",
            "adapter_gb": "LoRA adapter" if self.method in ("lora", "qlora", "lora_8bit") else f"{self.method} adapter",
            "gradients_gb": f"gradients ({_human_count(self.trainable_params)} trainable)",
            "optimizer_gb": f"optimizer ({self.assumptions.get('optimizer', '?')})",
            "activations_gb": "activations"
            + (" (checkpointed)" if self.assumptions.get("checkpointing") else ""),
            "overhead_gb": "CUDA context / workspace" if self.assumptions.get("device", "cuda") == "cuda"
            else "overhead (no CUDA context on CPU)",
        }
        width = max(len(v) for v in labels.values()) + 2
        lines = [title, "-" * (width + 10)]
        for key, value in self.parts().items():
            lines.append(f"{labels[key]:<{width}}{value:>8.2f} GB")
        lines.append("-" * (width + 10))
        lines.append(f"{'total':<{width}}{self.total_gb:>8.2f} GB")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def parse_param_count(params: int | float | str) -> int:
    """``7_000_000_000``, ``"7B"``, ``"0.5b"``, ``"125M"``, ``"7e9"`` -> an integer parameter count."""
    if isinstance(params, bool):
        raise KitError(f"params must be a count like 7e9 or '7B', not {params!r}")
    if isinstance(params, (int, float)):
        if params <= 0 or not math.isfinite(params):
            raise KitError(f"params must be a positive count, got {params!r}")
        return int(params)
    text = str(params).strip().lower().replace(",", "").replace("_", "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmbt]?)", text)
    if not match:
        raise KitError(
            f"cannot read a parameter count from {params!r}; write e.g. '7B', '0.5B', '125M' or 7e9"
        )
    scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[match.group(2)]
    value = float(match.group(1)) * scale
    if value <= 0:
        raise KitError(f"params must be a positive count, got {params!r}")
    return int(value)


def infer_shape(params: int, vocab_size: int | None = None) -> ModelShape:
    """Guess a Llama-style shape from a parameter count: ``P ~ 12*L*h^2 + 2*V*h`` with ``h = 128*L``."""
    vocab = vocab_size or DEFAULT_VOCAB

    def count(layers: float) -> float:
        hidden = 128 * layers
        return 12 * layers * hidden**2 + 2 * vocab * hidden

    lo, hi = 0.1, 1000.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count(mid) < params else (lo, mid)
    layers = max(1, round(lo))
    hidden = 128 * layers
    intermediate = max(256, round(8 * hidden / 3 / 256) * 256)
    return ModelShape(
        hidden_size=hidden,
        num_layers=layers,
        num_heads=max(1, hidden // 128),
        num_kv_heads=max(1, hidden // 128),
        intermediate_size=intermediate,
        vocab_size=vocab,
        inferred=True,
    )


def _config_dict(config: Any) -> dict[str, Any]:
    """A plain dict from a dict, a transformers config (``to_dict``) or an object with attributes."""
    if isinstance(config, dict):
        data = dict(config)
    elif hasattr(config, "to_dict"):
        data = config.to_dict()
    else:
        data = {k: v for k, v in vars(config).items() if not k.startswith("_")}
    text_config = data.get("text_config")  # multimodal configs nest the language model
    if isinstance(text_config, dict) and "hidden_size" not in data:
        data = {**text_config, **{k: v for k, v in data.items() if k != "text_config"}}
    return data


def _first(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return None


def shape_from_config(config: Any) -> ModelShape:
    """Read a ``ModelShape`` from a config dict / transformers config (Llama, Qwen, Mistral, GPT-2 key names)."""
    data = _config_dict(config)
    hidden = _first(data, "hidden_size", "n_embd", "d_model")
    layers = _first(data, "num_hidden_layers", "n_layer", "num_layers")
    if not hidden or not layers:
        raise KitError(
            f"the model config has no hidden_size/num_hidden_layers (keys: {sorted(data)[:20]}); "
            "pass params=, hidden_size= and num_layers= to estimate_memory instead"
        )
    heads = _first(data, "num_attention_heads", "n_head") or max(1, int(hidden) // 128)
    model_type = str(data.get("model_type", "")).lower()
    gated = model_type not in _NON_GATED
    intermediate = _first(data, "intermediate_size", "n_inner", "ffn_dim") or (
        round(8 * int(hidden) / 3) if gated else 4 * int(hidden)
    )
    experts = _first(data, "num_local_experts", "num_experts", "n_routed_experts")
    if experts:  # a mixture of experts stores every expert's MLP
        intermediate = int(_first(data, "moe_intermediate_size") or intermediate) * int(experts)
    tied = data.get("tie_word_embeddings")
    return ModelShape(
        hidden_size=int(hidden),
        num_layers=int(layers),
        num_heads=int(heads),
        num_kv_heads=int(_first(data, "num_key_value_heads", "num_kv_heads") or heads),
        intermediate_size=int(intermediate),
        vocab_size=int(data.get("vocab_size") or DEFAULT_VOCAB),
        tied_embeddings=bool(tied) if tied is not None else False,
        gated_mlp=gated,
        head_dim=int(data["head_dim"]) if data.get("head_dim") else None,
    )


def lora_parameter_count(
    shape: ModelShape, r: int = 16, targets: tuple[str, ...] | list[str] = DEFAULT_LORA_TARGETS
) -> int:
    """LoRA parameters: ``r*(in+out)`` for each targeted projection in every layer."""
    unknown = [t for t in targets if t not in _PROJECTIONS]
    if unknown:
        raise KitError(f"unknown LoRA target(s) {unknown}; the estimate knows {sorted(_PROJECTIONS)}")
    dims = _projection_dims(shape)
    per_layer = sum(r * (dims[t][0] + dims[t][1]) for t in targets if t in dims)
    return int(per_layer * shape.num_layers)


_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _projection_dims(shape: ModelShape) -> dict[str, tuple[int, int]]:
    """(in, out) of each projection of one decoder layer."""
    h, i = shape.hidden_size, shape.intermediate_size
    q_out = shape.num_heads * shape.dim_per_head
    kv_out = shape.num_kv_heads * shape.dim_per_head
    dims = {
        "q_proj": (h, q_out), "k_proj": (h, kv_out), "v_proj": (h, kv_out), "o_proj": (q_out, h),
        "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h),
    }  # fmt: skip
    if not shape.gated_mlp:
        dims.pop("gate_proj")
    return dims


def _factor(dimension: int) -> tuple[int, int]:
    """``dimension = m * n`` with ``m <= n`` closest to its square root (PEFT LoKr's default factorisation)."""
    m = math.isqrt(dimension)
    while m > 1 and dimension % m:
        m -= 1
    return m, dimension // m


def method_parameter_count(
    shape: ModelShape, method: str, r: int = 16, targets: tuple[str, ...] | list[str] = DEFAULT_LORA_TARGETS,
    num_virtual_tokens: int = NUM_VIRTUAL_TOKENS,
) -> int:
    """Trainable parameters of an adapter method as :mod:`kit.training.methods` builds it (PEFT's own counts):
    LoRA/QLoRA/8-bit ``r*(in+out)`` per target; DoRA adds one magnitude per output; LoHa twice LoRA; LoKr a
    Kronecker pair per target; IA3 one scale per k/v output and per MLP input; prefix ``2*L*kv_dim`` per virtual
    token; prompt ``h`` per virtual token."""
    method = method.lower()
    dims = _projection_dims(shape)
    chosen = [dims[t] for t in targets if t in dims]
    lora = lora_parameter_count(shape, r, targets)
    if method in ("lora", "qlora", "lora_8bit"):
        return lora
    if method == "dora":
        return lora + shape.num_layers * sum(out for _, out in chosen)
    if method == "loha":
        return 2 * lora
    if method == "lokr":
        per_layer = 0
        for fan_in, fan_out in chosen:
            (o1, o2), (i1, i2) = _factor(fan_out), _factor(fan_in)
            w2 = o2 * i2 if r >= max(o2, i2) / 2 else r * (o2 + i2)
            per_layer += o1 * i1 + w2
        return per_layer * shape.num_layers
    if method == "ia3":
        kv_out = shape.num_kv_heads * shape.dim_per_head
        return shape.num_layers * (2 * kv_out + shape.intermediate_size)
    if method == "prefix":
        return num_virtual_tokens * shape.num_layers * 2 * shape.num_kv_heads * shape.dim_per_head
    if method == "prompt":
        return num_virtual_tokens * shape.hidden_size
    raise KitError(f"method {method!r} trains no adapter; use one of lora, qlora, lora_8bit, {', '.join(PEFT_METHODS)}")


def _optimizer_bytes(optimizer: str) -> float:
    name = optimizer.lower()
    if "lion" in name:
        return 1.0 if "8bit" in name else 4.0
    if "8bit" in name and "adam" in name:
        return 2.0
    if "adam" in name:
        return 8.0
    if "sgd" in name or "adafactor" in name:
        return 0.0
    raise KitError(
        f"unknown optimizer {optimizer!r}; use one of adamw_torch, adamw_8bit, paged_adamw_8bit, lion, sgd, adafactor"
    )


def _activation_bytes_per_layer(shape: ModelShape, seq_len: int, batch: int, flash_attention: bool) -> float:
    """Korthikanti et al. per-layer training activations, with the MLP share scaled to the real MLP width."""
    h = shape.hidden_size
    ratio = shape.intermediate_size / h
    mlp = 8 * ratio if shape.gated_mlp else 1 + 4 * ratio
    per_layer = seq_len * batch * h * (17 + mlp)
    if not flash_attention:
        per_layer += 5 * shape.num_heads * seq_len * seq_len * batch
    return per_layer


def estimate_memory(
    params: int | float | str | None,
    method: str,
    seq_len: int,
    batch: int,
    *,
    hidden_size: int | None = None,
    num_layers: int | None = None,
    num_heads: int | None = None,
    num_kv_heads: int | None = None,
    intermediate_size: int | None = None,
    vocab_size: int | None = None,
    tied_embeddings: bool | None = None,
    model_config: Any = None,
    lora_r: int = 16,
    lora_targets: tuple[str, ...] | list[str] = DEFAULT_LORA_TARGETS,
    lora_targets_share: float | None = None,
    trainable_params: int | None = None,
    dtype: str = "bf16",
    quantization: str | None = None,
    double_quant: bool = True,
    optimizer: str = "adamw",
    mixed_precision: bool = True,
    gradient_checkpointing: bool | str = True,
    flash_attention: bool = True,
    fused_loss: bool = True,
    overhead_gb: float | None = None,
    device: str = "cuda",
) -> MemoryEstimate:
    """Estimate GPU memory (GiB) for ``method`` (inference, full, lora, qlora, lora_8bit, dora, prefix, prompt,
    ia3, loha, lokr: :data:`METHODS`); formulas in the module docstring, adapter sizes in
    :func:`method_parameter_count`.

    ``params`` may be None when ``model_config`` is given. ``trainable_params`` overrides the LoRA count;
    ``lora_targets_share`` (a fraction of ``params``) replaces the shape-based LoRA count when set.
    ``gradient_checkpointing`` may be ``"unsloth"`` (kept layer inputs offloaded to CPU RAM).
    ``device="cpu"`` drops the CUDA context and workspace overhead (``overhead_gb`` defaults to 0.75 on CUDA);
    on CPU the total is a floor for the process's RAM, which also holds Python, torch and the data.
    """
    method = method.lower().strip()
    if method not in METHODS:
        raise KitError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if seq_len <= 0 or batch <= 0:
        raise KitError(f"seq_len and batch must be positive, got seq_len={seq_len}, batch={batch}")
    dtype_key = (dtype or "bf16").lower()
    if dtype_key not in _DTYPE_BYTES:
        raise KitError(f"unknown dtype {dtype!r}; use bf16, fp16 or fp32 (4-/8-bit go in quantization=)")
    dtype_bytes = _DTYPE_BYTES[dtype_key]
    quant = _QUANT_ALIASES.get(str(quantization).lower()) if quantization else None
    if quantization and quant is None:
        raise KitError(f"unknown quantization {quantization!r}; use '4bit' or '8bit' (or None for 16-bit)")
    if method == "qlora" and quant is None:
        quant = "4bit"
    if method == "lora_8bit" and quant is None:
        quant = "8bit"
    if method == "full" and quant:
        raise KitError("full fine-tuning needs 16- or 32-bit weights; use method='qlora' for a 4-bit base")

    # Shape: explicit numbers > model_config > inferred from the parameter count.
    if model_config is not None:
        shape = shape_from_config(model_config)
        source = "config"
    else:
        count = parse_param_count(params) if params is not None else None
        if count is None and not (hidden_size and num_layers):
            raise KitError("give params (e.g. '7B'), a model_config, or hidden_size and num_layers")
        shape = infer_shape(count, vocab_size) if count is not None else infer_shape(10**9, vocab_size)
        source = "inferred from the parameter count"
    overrides = {
        "hidden_size": hidden_size, "num_layers": num_layers, "num_heads": num_heads,
        "num_kv_heads": num_kv_heads, "intermediate_size": intermediate_size, "vocab_size": vocab_size,
        "tied_embeddings": tied_embeddings,
    }  # fmt: skip
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        if "hidden_size" in overrides and "num_heads" not in overrides and shape.inferred:
            overrides["num_heads"] = overrides["num_kv_heads"] = max(1, overrides["hidden_size"] // 128)
        if "hidden_size" in overrides and "intermediate_size" not in overrides and shape.inferred:
            overrides["intermediate_size"] = max(256, round(8 * overrides["hidden_size"] / 3 / 256) * 256)
        shape = replace(shape, **overrides)
        source = source if source == "config" else "given shape"
    n_params = parse_param_count(params) if params is not None else shape.parameter_count()

    # Weights.
    embedding_params = min(
        n_params, shape.vocab_size * shape.hidden_size * (1 if shape.tied_embeddings else 2)
    )
    if quant == "4bit":
        const_bits = (8 / 64 + 32 / (64 * 256)) if double_quant else 32 / 64
        per_param = 0.5 + const_bits / 8
        weights = (n_params - embedding_params) * per_param + embedding_params * 2
        weight_format = f"4-bit NF4{' + double quant' if double_quant else ''}"
    elif quant == "8bit":
        weights = (n_params - embedding_params) * 1 + embedding_params * 2
        weight_format = "8-bit"
    else:
        weights = n_params * dtype_bytes
        weight_format = dtype_key

    # Trainable parameters, gradients, optimizer.
    opt_bytes = _optimizer_bytes(optimizer)
    adapter = gradients = optimizer_state = 0.0
    if method == "inference":
        trainable = 0
    elif method == "full":
        trainable = n_params if trainable_params is None else int(trainable_params)
        if mixed_precision and dtype_bytes == 2:
            gradients = trainable * 4
            optimizer_state = trainable * (opt_bytes + 4)  # + fp32 master weights
        else:
            gradients = trainable * dtype_bytes
            optimizer_state = trainable * opt_bytes
    else:
        if trainable_params is not None:
            trainable = int(trainable_params)
        elif lora_targets_share is not None and method in ("lora", "qlora", "lora_8bit"):
            trainable = int(lora_targets_share * n_params)
        else:
            trainable = method_parameter_count(shape, method, lora_r, tuple(lora_targets))
        adapter = trainable * 4  # fp32 adapters
        gradients = trainable * 4
        optimizer_state = trainable * opt_bytes

    # Activations.
    s, b, h, v = seq_len, batch, shape.hidden_size, shape.vocab_size
    details: dict[str, float] = {}
    if method == "inference":
        kv = 2 * shape.num_layers * shape.num_kv_heads * shape.dim_per_head * s * b * 2
        working = s * b * (4 * h + 3 * shape.intermediate_size) * 2
        if not flash_attention:
            working += shape.num_heads * s * s * b * 2
        logits = b * v * 4
        activations = kv + working + logits
        details = {"kv_cache_gb": kv / GIB, "working_set_gb": working / GIB, "logits_gb": logits / GIB}
    else:
        if method in ("prefix", "prompt"):
            s = seq_len + NUM_VIRTUAL_TOKENS  # the virtual tokens join every sequence
        if method == "prefix":
            gradient_checkpointing = False  # PEFT refuses prefix tuning under gradient checkpointing
        layer = _activation_bytes_per_layer(shape, s, b, flash_attention)
        if gradient_checkpointing:
            offloaded = str(gradient_checkpointing).lower() == "unsloth"
            kept = 0.0 if offloaded else 2 * s * b * h * shape.num_layers
            body = kept + layer
        else:
            body = layer * shape.num_layers
        logits = s * b * v * (2 if fused_loss else 10)
        dequant = h * shape.intermediate_size * 2 if quant else 0
        if method == "dora":  # DoRA forms W + BA to take its column norms: one fp32 copy of the largest weight
            dequant += h * shape.intermediate_size * 4
        activations = body + logits + dequant
        details = {
            "per_layer_gb": layer / GIB,
            "layers_gb": body / GIB,
            "logits_gb": logits / GIB,
            "dequant_buffer_gb": dequant / GIB,
        }

    assumptions = {
        "seq_len": seq_len,
        "batch": batch,
        "shape": asdict(shape),
        "shape_source": source,
        "weight_format": weight_format,
        "dtype": dtype_key,
        "quantization": quant,
        "optimizer": optimizer,
        "optimizer_bytes_per_param": opt_bytes,
        "mixed_precision": mixed_precision,
        "checkpointing": gradient_checkpointing if method != "inference" else None,
        "seq_len_trained": s if method != "inference" else seq_len,
        "flash_attention": flash_attention,
        "fused_loss": fused_loss,
        "device": device,
        "lora_r": lora_r if method in ("lora", "qlora", "lora_8bit", "dora", "loha", "lokr") else None,
        "activation_details": details,
    }
    return MemoryEstimate(
        method=method,
        params=n_params,
        weights_gb=weights / GIB,
        adapter_gb=adapter / GIB,
        trainable_params=trainable,
        gradients_gb=gradients / GIB,
        optimizer_gb=optimizer_state / GIB,
        activations_gb=activations / GIB,
        overhead_gb=float(overhead_gb if overhead_gb is not None else (DEFAULT_OVERHEAD_GB if device == "cuda" else 0.0)),
        assumptions=assumptions,
    )


def _size_from_name(name: str) -> float | None:
    """The size in a model name, in parameters: ``Qwen2.5-7B-Instruct`` -> 7e9, ``...-125M`` -> 1.25e8."""
    matches = re.findall(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", name.lower())
    if not matches:
        return None
    number, unit = matches[-1]
    return float(number) * (1e9 if unit == "b" else 1e6)


def known_shape_for_name(name: str) -> tuple[str, dict[str, Any]] | None:
    """The built-in table entry matching a hub id such as ``unsloth/Qwen2.5-7B-Instruct-bnb-4bit``."""
    base = name.rsplit("/", 1)[-1].lower()
    size = _size_from_name(base)
    if size is None:
        return None
    for pattern, family in _FAMILIES:
        if not pattern.search(base):
            continue
        for key, config in _KNOWN_SHAPES.items():
            key_size = _size_from_name(key)
            if key.lower().startswith(family.lower()) and key_size and abs(key_size - size) / size < 0.02:
                return key, config
    return None


def _local_config(name: str) -> dict[str, Any] | None:
    """config.json from a local folder or file, or from the Hugging Face cache if already there (no download)."""
    path = resolve_path(name)
    candidates = [path] if path.is_file() else [path / "config.json"]
    if "/" in name and not path.exists():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json")
            if isinstance(cached, str):
                candidates.append(Path(cached))
        except Exception:  # the cache is optional; a hub id alone never triggers a download
            pass
    for candidate in candidates:
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise KitError(f"{candidate}: not a readable config.json ({exc})") from exc
    return None


def estimate_for_model(
    model_name_or_config: str | os.PathLike[str] | dict[str, Any] | Any,
    method: str,
    seq_len: int,
    batch: int,
    **kwargs: Any,
) -> MemoryEstimate:
    """``estimate_memory`` for a local model folder/config.json, a config object, or a hub id (built-in table).

    Never downloads: a hub id with no local or cached config uses the built-in shapes of well-known models,
    else the size in its name (``...-7B-...``) with an inferred shape. Extra keywords go to ``estimate_memory``.
    ``dtype="auto"`` (the default) and ``device="auto"`` describe this machine: the dtype
    :func:`resolve_dtype` would load in, and ``cpu`` or ``cuda`` (the CUDA overhead only on a GPU).
    """
    if kwargs.get("dtype", "auto") in (None, "auto"):
        kwargs["dtype"] = resolve_dtype("auto")[0]
    if kwargs.get("device", "auto") == "auto":
        import torch

        kwargs["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(model_name_or_config, (str, os.PathLike)):
        estimate = estimate_memory(None, method, seq_len, batch, model_config=model_name_or_config, **kwargs)
        estimate.assumptions["source"] = "config object"
        return estimate
    name = os.fspath(model_name_or_config)
    config = _local_config(name)
    if config is not None:
        source = f"config.json for {name}"
    else:
        known = known_shape_for_name(name)
        if known is not None:
            source = f"built-in shape of {known[0]}"
            config = known[1]
    if config is not None:
        estimate = estimate_memory(None, method, seq_len, batch, model_config=config, **kwargs)
    else:
        size = _size_from_name(name.rsplit("/", 1)[-1])
        if size is None:
            raise KitError(
                f"no config.json found for {name!r} and no size (like '-7B-') in its name; pass a local model "
                "folder, a config, or call estimate_memory(params='7B', ...)"
            )
        source = f"size {_human_count(int(size))} read from the name {name!r}, shape inferred"
        estimate = estimate_memory(int(size), method, seq_len, batch, **kwargs)
    estimate.assumptions["source"] = source
    return estimate


def gpu_memory_gb() -> float | None:
    """Total memory of CUDA device 0 in GiB, or None without a GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / GIB


def fits(estimate: MemoryEstimate, gpu_gb: float | None = None, *, margin: float = 0.95) -> bool:
    """Whether the estimate fits in ``margin`` of ``gpu_gb`` (default: the visible GPU; fragmentation eats ~5 %)."""
    if gpu_gb is None:
        gpu_gb = gpu_memory_gb()
        if gpu_gb is None:
            raise KitError("no CUDA GPU is visible; pass gpu_gb= (e.g. 16 for a T4, 24 for an RTX 4090)")
    return estimate.total_gb <= margin * gpu_gb


def suggestions(estimate: MemoryEstimate) -> list[str]:
    """What to change when an estimate does not fit, from the biggest saving to the smallest."""
    tips = []
    if estimate.method == "full":
        tips.append(
            "use LoRA (method='lora') or QLoRA (method='qlora'): no full gradients or optimizer states"
        )
    if estimate.method == "lora":
        tips.append("use QLoRA (load_in_4bit=True): 4-bit base weights are about a quarter of 16-bit")
    if estimate.method != "inference" and not estimate.assumptions.get("checkpointing"):
        tips.append("turn on gradient checkpointing (use_gradient_checkpointing='unsloth')")
    if estimate.assumptions.get("batch", 1) > 1:
        tips.append("halve per_device_train_batch_size and double gradient_accumulation_steps")
    if "8bit" not in str(estimate.assumptions.get("optimizer")) and estimate.optimizer_gb > 0.5:
        tips.append("use optim='adamw_8bit' (2 bytes of optimizer state per parameter instead of 8)")
    tips.append("shorten max_seq_length (activations grow with it)")
    return tips


def print_estimate(estimate: MemoryEstimate, gpu_gb: float | None = None) -> MemoryEstimate:
    """Print the estimate table and, against ``gpu_gb`` or the visible GPU, whether it fits; returns it."""
    print(estimate.table())
    if "source" in estimate.assumptions:
        print(f"shape: {estimate.assumptions['source']}")
    available = gpu_gb if gpu_gb is not None else gpu_memory_gb()
    if available is None:
        print(
            "no GPU visible: compare the total with your GPU's memory (T4 16 GB, A100 40/80 GB, RTX 4090 24 GB)"
        )
        return estimate
    if fits(estimate, available):
        print(f"fits in {available:.1f} GB ({estimate.total_gb / available:.0%} of it)")
    else:
        print(f"does NOT fit in {available:.1f} GB (needs ~{estimate.total_gb:.1f} GB). Try:")
        for tip in suggestions(estimate):
            print(f"  - {tip}")
    return estimate


def compare_to_measured(estimate: MemoryEstimate, measured_peak_gb: float | None = None) -> dict[str, Any]:
    """Set the estimate against a measured peak, print and return both. Default measure: on a GPU
    ``torch.cuda.max_memory_reserved``; on a CPU this process's peak RSS, which also holds Python, torch and the
    data, so there the estimate is a floor (``measured`` says which was used)."""
    measured = "given"
    if measured_peak_gb is None:
        import torch

        if torch.cuda.is_available():
            measured_peak_gb = torch.cuda.max_memory_reserved() / GIB
            measured = "cuda_max_reserved"
        else:
            from kit.runinfo import peak_memory_mb

            measured_peak_gb = peak_memory_mb() / 1024
            measured = "cpu_peak_rss"
    if measured_peak_gb <= 0:
        raise KitError(f"measured_peak_gb must be positive, got {measured_peak_gb}")
    error = (estimate.total_gb - measured_peak_gb) / measured_peak_gb
    result: dict[str, Any] = {
        "estimated_gb": round(estimate.total_gb, 3),
        "measured_gb": round(float(measured_peak_gb), 3),
        "ratio": round(estimate.total_gb / measured_peak_gb, 3),
        "error_pct": round(100 * error, 1),
        "measured": measured,
    }
    direction = "high" if error >= 0 else "low"
    what = "peak RSS (Python, torch and the data included: the estimate is a floor)" if measured == "cpu_peak_rss" \
        else "peak"
    print(
        f"[memory] estimated {estimate.total_gb:.2f} GB, measured {what} {measured_peak_gb:.2f} GB "
        f"(estimate {abs(error):.0%} {direction})"
    )
    return result


def _human_count(n: int) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(n)
