"""dtype="auto": bf16 only where the CPU computes it natively (avx512_bf16 or AMX reached by AVX-512 kernels),
float32 on AVX2-only CPUs where bf16 is emulated (measured 22x slower there), Unsloth's rule on CUDA."""

from __future__ import annotations

import pytest
import torch

from kit.errors import KitError
from kit.runtime.precision import cpu_precision, resolve_dtype


def fake_cpu(monkeypatch: pytest.MonkeyPatch, capability: str, bf16: bool, amx: bool = False) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("capability", "bf16", "amx", "expected"), [
    ("AVX2", False, False, ("float32", "cpu: AVX2, no native bf16 -> float32")),
    ("AVX512", False, False, ("float32", "cpu: AVX512, no native bf16 -> float32")),
    ("AVX512", True, False, ("bfloat16", "cpu: AVX512 with avx512_bf16, native bf16 -> bfloat16")),
    ("AVX512", True, True, ("bfloat16", "cpu: AVX512 with AMX, native bf16 -> bfloat16")),
    ("DEFAULT", True, True, ("float32", "cpu: DEFAULT, no native bf16 -> float32")),
])
def test_auto_follows_the_cpu(monkeypatch: pytest.MonkeyPatch, capability: str, bf16: bool, amx: bool,
                              expected: tuple[str, str]) -> None:
    fake_cpu(monkeypatch, capability, bf16, amx)
    assert resolve_dtype("auto") == expected
    assert resolve_dtype(None) == expected


def test_a_cpu_held_to_avx2_is_judged_as_avx2(monkeypatch: pytest.MonkeyPatch) -> None:
    # ATEN_CPU_CAPABILITY changes what get_cpu_capability reports; a oneDNN cap below bf16 counts too.
    fake_cpu(monkeypatch, "AVX512", True)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    name, reason = resolve_dtype("auto")
    assert name == "float32" and reason == "cpu: AVX512, no native bf16 (held by ONEDNN_MAX_CPU_ISA=AVX2) -> float32"
    assert cpu_precision()["held_by"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert resolve_dtype("auto")[0] == "bfloat16"


def test_real_cpu_capability_env(tmp_path) -> None:
    """In a fresh process, ATEN_CPU_CAPABILITY=default makes PyTorch report DEFAULT, so auto gives float32."""
    import os
    import subprocess
    import sys

    code = "from kit.runtime.precision import resolve_dtype; print(resolve_dtype('auto')[1])"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "cpu: DEFAULT, no native bf16 (held by ATEN_CPU_CAPABILITY=default) -> float32"


def test_explicit_dtype_is_kept_and_unknown_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cpu(monkeypatch, "AVX2", False)
    assert resolve_dtype("bfloat16") == ("bfloat16", "dtype=bfloat16 as asked")
    assert resolve_dtype(torch.float16)[0] == "float16" and resolve_dtype("fp32")[0] == "float32"
    with pytest.raises(KitError, match="dtype 'int8' is not one of auto, bfloat16, float16, float32"):
        resolve_dtype("int8")


def test_cuda_keeps_unsloths_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_: False)
    assert resolve_dtype("auto") == ("float16", "cuda: Tesla T4 has no bf16 -> float16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_: True)
    assert resolve_dtype(None)[0] == "bfloat16"


def test_choice_is_printed_once_and_recorded(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import kit.training.model as model
    from kit.runinfo import device_info

    fake_cpu(monkeypatch, "AVX2", False)
    monkeypatch.setattr(model, "last_precision", None)
    assert model.choose_dtype("auto") == "float32" and model.choose_dtype(None) == "float32"
    assert capsys.readouterr().out.count("[precision] cpu: AVX2, no native bf16 -> float32") == 1
    info = device_info()
    assert info["dtype"] == "float32" and info["dtype_reason"] == "cpu: AVX2, no native bf16 -> float32"
    assert info["capability"] == "AVX2" and info["native_bf16"] is False


def test_memory_estimate_follows_dtype_and_device() -> None:
    from kit.training.memory import estimate_memory

    cpu = estimate_memory("135M", "lora", 256, 8, dtype="float32", device="cpu")
    gpu = estimate_memory("135M", "lora", 256, 8, dtype="bf16", device="cuda")
    assert cpu.overhead_gb == 0 and gpu.overhead_gb == 0.75
    assert cpu.weights_gb == pytest.approx(2 * gpu.weights_gb)
    assert "weights (float32)" in cpu.table() and "no CUDA context on CPU" in cpu.table()
