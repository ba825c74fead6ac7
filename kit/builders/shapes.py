"""Random-init models of real shapes, built locally from a config: honest speed and memory figures, no hub.

A GPU machine has no hub and carries at most 64 MiB of files, so real weights cannot travel there. A
model with a real architecture and random weights costs the same per token as the real one, which is
what speed and memory runs measure. The folder loads with ``FastLanguageModel.from_pretrained(DIR)``:
config, safetensors and the kit's tiny BPE tokenizer (its ids are a subset of the model's vocabulary).
``kit random-model DIR --shape qwen2.5-0.5b``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError


@dataclass(frozen=True)
class Shape:
    """The config numbers that decide a decoder's cost; the rest are the family's defaults."""

    family: str  # "qwen2" or "llama"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool = True
    source: str = ""  # the public model whose config.json these numbers come from


SHAPES: dict[str, Shape] = {
    "qwen2.5-0.5b": Shape("qwen2", 151936, 896, 4864, 24, 14, 2, 32768, 1e6, 1e-6, True, "Qwen/Qwen2.5-0.5B-Instruct"),
    "qwen2.5-1.5b": Shape("qwen2", 151936, 1536, 8960, 28, 12, 2, 32768, 1e6, 1e-6, True, "Qwen/Qwen2.5-1.5B-Instruct"),
    "smollm2-135m": Shape("llama", 49152, 576, 1536, 30, 9, 3, 8192, 1e5, 1e-5, True, "HuggingFaceTB/SmolLM2-135M-Instruct"),
}


def shape(name: str) -> Shape:
    """The shape called ``name``; a KitError listing the known ones otherwise."""
    try:
        return SHAPES[name]
    except KeyError:
        raise KitError(f"unknown shape {name!r}: choose one of {', '.join(SHAPES)}") from None


def make_config(name: str, *, eos_token_id: int | None = None, pad_token_id: int | None = None, dtype: str = "bfloat16") -> Any:
    """A transformers config (``Qwen2Config`` or ``LlamaConfig``) of the named shape."""
    from transformers import LlamaConfig, Qwen2Config

    s = shape(name)
    cls = Qwen2Config if s.family == "qwen2" else LlamaConfig
    return cls(
        vocab_size=s.vocab_size,
        hidden_size=s.hidden_size,
        intermediate_size=s.intermediate_size,
        num_hidden_layers=s.num_hidden_layers,
        num_attention_heads=s.num_attention_heads,
        num_key_value_heads=s.num_key_value_heads,
        max_position_embeddings=s.max_position_embeddings,
        rope_theta=s.rope_theta,
        rms_norm_eps=s.rms_norm_eps,
        tie_word_embeddings=s.tie_word_embeddings,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        dtype=dtype,
    )


def parameter_count(name: str) -> int:
    """Parameters of the named shape, computed from the config without building the model."""
    s = shape(name)
    head_dim = s.hidden_size // s.num_attention_heads
    kv = s.num_key_value_heads * head_dim
    attention = s.hidden_size * s.hidden_size * 2 + s.hidden_size * kv * 2  # q, o and k, v
    if s.family == "qwen2":
        attention += s.hidden_size + 2 * kv  # q/k/v biases
    mlp = 3 * s.hidden_size * s.intermediate_size
    layer = attention + mlp + 2 * s.hidden_size
    embeddings = s.vocab_size * s.hidden_size * (1 if s.tie_word_embeddings else 2)
    return s.num_hidden_layers * layer + embeddings + s.hidden_size


def build_random_model(out_dir: str | Path, name: str, *, seed: int = 3407, dtype: str = "bfloat16",
                       device: str | None = None) -> Path:
    """Write a random-init model of shape ``name`` with the kit's tiny tokenizer to ``out_dir``.

    ``device`` (default: CUDA when available) is where the weights are initialised: a 1.5B model
    initialises in seconds on a GPU and in about a minute on two CPU cores. Same seed, same weights.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from kit.builders.tiny import IM_END, PAD_TOKEN, TinyModelSpec, train_tokenizer
    from kit.paths import repo_root

    if dtype not in ("bfloat16", "float16", "float32"):
        raise KitError(f"--dtype must be bfloat16, float16 or float32, got {dtype!r}")
    shape(name)
    out = Path(out_dir)
    tokenizer = train_tokenizer(repo_root() / "data", TinyModelSpec.vocab_size)
    tokenizer.model_max_length = shape(name).max_position_embeddings
    eos_id, pad_id = tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = make_config(name, eos_token_id=eos_id, pad_token_id=pad_id, dtype=dtype)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=eos_id)
    out.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model.to("cpu").save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {"shape": name, **asdict(shape(name)), "dtype": dtype, "seed": seed,
            "parameters": sum(p.numel() for p in model.parameters()), "tokenizer_vocab": len(tokenizer),
            "note": "random weights: for speed and memory only, its outputs are noise"}
    (out / "kit_random_model.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kit random-model DIR --shape NAME``."""
    p = subparsers.add_parser("random-model", help="build a random-init model of a real shape (for speed/memory runs) into DIR")
    p.add_argument("dir", help="output directory (created)")
    p.add_argument("--shape", required=True, choices=sorted(SHAPES), help="the architecture to copy")
    p.add_argument("--dtype", default="bfloat16", help="stored dtype: bfloat16 (default, as the real checkpoints), float16, float32")
    p.add_argument("--seed", type=int, default=3407, help="weight initialisation seed (default 3407)")
    p.add_argument("--device", default=None, help="where to initialise (default: cuda when available, else cpu)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out = build_random_model(args.dir, args.shape, seed=args.seed, dtype=args.dtype, device=args.device)
    info = json.loads((out / "kit_random_model.json").read_text(encoding="utf-8"))
    print(f"random model: {out} ({args.shape}, {info['parameters']:,} parameters, {args.dtype}, "
          f"{time.perf_counter() - start:.1f} s)")
    return 0
