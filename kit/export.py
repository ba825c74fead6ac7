"""Saving fine-tuned models: merged 16-bit weights anywhere, GGUF only where its tools can run.

GGUF export (Unsloth's ``save_pretrained_gguf``) needs llama.cpp's converter and ``llama-quantize``;
without them it fails late, after a long merge, with an obscure message. :func:`gguf_requirements`
checks everything up front and says what is missing and how to get it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Where Unsloth looks for (and builds) llama.cpp.
LLAMA_CPP_DIRS = (Path("llama.cpp"), Path.home() / ".unsloth" / "llama.cpp")
QUANTIZE_NAMES = ("llama-quantize", "quantize")
CONVERTER = "convert_hf_to_gguf.py"


@dataclass
class GGUFCheck:
    """Whether a GGUF export can run here, and what is missing otherwise."""

    ok: bool
    missing: list[str] = field(default_factory=list)
    found: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.ok:
            return "GGUF export ready: " + ", ".join(f"{k}={v}" for k, v in self.found.items())
        return "GGUF export skipped:\n" + "\n".join(f"  - {m}" for m in self.missing)


def _find_quantize() -> str | None:
    for name in QUANTIZE_NAMES:
        found = shutil.which(name)
        if found:
            return found
    for base in LLAMA_CPP_DIRS:
        for name in QUANTIZE_NAMES:
            for candidate in (base / name, base / "build" / "bin" / name):
                if candidate.is_file():
                    return str(candidate)
    return None


def _find_converter() -> str | None:
    for base in LLAMA_CPP_DIRS:
        if (base / CONVERTER).is_file():
            return str(base / CONVERTER)
    return None


def gguf_requirements(require_gpu: bool = True) -> GGUFCheck:
    """Check the GPU and llama.cpp's tools before any merge starts; never installs or downloads."""
    missing: list[str] = []
    found: dict[str, str] = {}
    if require_gpu:
        import torch

        if torch.cuda.is_available():
            found["gpu"] = torch.cuda.get_device_name(0)
        else:
            missing.append("a CUDA GPU: this kit exports GGUF on GPU machines only (run this notebook on Colab)")
    quantize = _find_quantize()
    if quantize:
        found["llama-quantize"] = quantize
    else:
        missing.append(
            "llama.cpp's llama-quantize: build llama.cpp (git clone https://github.com/ggml-org/llama.cpp && "
            "cmake -B llama.cpp/build llama.cpp && cmake --build llama.cpp/build --target llama-quantize) "
            "or put llama-quantize on PATH"
        )
    converter = _find_converter()
    if converter:
        found["converter"] = converter
    else:
        missing.append(f"llama.cpp's {CONVERTER}: a llama.cpp checkout in ./llama.cpp or ~/.unsloth/llama.cpp")
    return GGUFCheck(ok=not missing, missing=missing, found=found)


def save_merged_16bit(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """Merge the LoRA adapter into the base weights and save them in 16 bits (Unsloth's ``save_pretrained_merged``)."""
    out = Path(out_dir)
    model.save_pretrained_merged(str(out), tokenizer, save_method="merged_16bit")
    return out


def save_gguf(model: Any, tokenizer: Any, out_dir: str | Path, quantization_method: str = "q4_k_m") -> list[str]:
    """Export GGUF after :func:`gguf_requirements` passed; raises KitError naming what is missing otherwise."""
    from kit.errors import KitError

    check = gguf_requirements()
    if not check.ok:
        raise KitError(str(check))
    return list(model.save_pretrained_gguf(str(out_dir), tokenizer, quantization_method=quantization_method))
