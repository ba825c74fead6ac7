"""Which dtype this machine computes fast: the CPU's bf16 support and the ``dtype="auto"`` choice.

Ground floor: the run record (:mod:`kit.runinfo`) reports :func:`cpu_precision`, and model loading
(:mod:`kit.training.model`) asks :func:`resolve_dtype`; neither needs anything above this module.
"""

from __future__ import annotations

import os
from typing import Any

from kit.errors import KitError

# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which bf16 matmuls still run on native bf16 instructions.
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                     "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "ALL", "DEFAULT")


def cpu_precision() -> dict[str, Any]:
    """What this CPU computes bf16 with: PyTorch's dispatch level, the bf16 instructions present, and whether
    bf16 is native (``avx512_bf16`` or AMX reached by PyTorch's AVX-512 kernels and oneDNN). Without native
    bf16, PyTorch emulates it: training SmolLM2-135M ran 22x slower in bf16 than in fp32 on an AVX2-only CPU.

    ``ATEN_CPU_CAPABILITY=avx2`` and ``ONEDNN_MAX_CPU_ISA=AVX2`` hold an AVX-512 machine to AVX2, and are
    honoured here, so a run made that way is judged as the AVX2 machine it imitates.
    """
    import torch

    capability = str(torch.backends.cpu.get_cpu_capability())
    cpu = torch.cpu
    avx512_bf16 = bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())
    amx = bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)())
    onednn_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    onednn_ok = not onednn_cap or onednn_cap in _ONEDNN_BF16_ISAS
    native = capability.upper().startswith("AVX512") and (avx512_bf16 or amx) and onednn_ok
    info: dict[str, Any] = {
        "capability": capability,
        "avx512_bf16": avx512_bf16,
        "amx": amx,
        "native_bf16": native,
    }
    pinned = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
              if os.environ.get(k)}
    if pinned:
        info["held_by"] = pinned  # the instruction set was capped by environment variables
    return info


def resolve_dtype(dtype: Any = "auto") -> tuple[str, str]:
    """``(dtype name, reason)`` for ``dtype``: an explicit dtype is kept; ``"auto"``/``None`` picks, on CPU,
    bfloat16 only where the processor computes it natively and float32 otherwise, and on CUDA bf16 where the GPU
    supports it, else float16 (Unsloth's rule). The reason reads like ``cpu: AVX2, no native bf16 -> float32``.
    """
    import torch

    if dtype is not None and not (isinstance(dtype, str) and dtype.strip().lower() in ("auto", "none", "")):
        name = str(dtype).replace("torch.", "").strip()
        name = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}.get(
            name.lower(), name.lower())
        if name not in ("bfloat16", "float16", "float32"):
            raise KitError(f"dtype {dtype!r} is not one of auto, bfloat16, float16, float32")
        return name, f"dtype={name} as asked"
    if torch.cuda.is_available():
        try:
            gpu = torch.cuda.get_device_name(0)
        except (AssertionError, RuntimeError):  # a CUDA runtime that cannot name its device still has one
            gpu = "the GPU"
        try:
            bf16 = bool(torch.cuda.is_bf16_supported())
        except (AssertionError, RuntimeError):
            bf16 = False
        if bf16:
            return "bfloat16", f"cuda: {gpu} supports bf16 -> bfloat16"
        return "float16", f"cuda: {gpu} has no bf16 -> float16"
    info = cpu_precision()
    held = f" (held by {', '.join(f'{k}={v}' for k, v in info['held_by'].items())})" if "held_by" in info else ""
    if info["native_bf16"]:
        what = "AMX" if info["amx"] else "avx512_bf16"
        return "bfloat16", f"cpu: {info['capability']} with {what}, native bf16{held} -> bfloat16"
    return "float32", f"cpu: {info['capability']}, no native bf16{held} -> float32"
