"""fast_inference: passed through to Unsloth's vLLM path on a CUDA GPU with vllm, ignored in one line elsewhere."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace
from typing import ClassVar

import pytest

import kit.training.model
from kit.training.model import fast_inference_args, load_model


class FakeFast:
    """Stands in for FastLanguageModel: records what from_pretrained was asked for."""

    calls: ClassVar[list[dict]] = []

    @classmethod
    def from_pretrained(cls, **kwargs):
        cls.calls.append(kwargs)
        return SimpleNamespace(dtype="float32", config=None), object()


@pytest.fixture
def fake_fast(monkeypatch: pytest.MonkeyPatch):
    FakeFast.calls = []
    monkeypatch.setattr(kit.training.model, "import_unsloth", lambda: FakeFast)
    return FakeFast


def test_cpu_ignores_fast_inference_in_one_line(fake_fast, monkeypatch, capsys) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    load_model("some/model", load_in_4bit=False, fast_inference=True, max_lora_rank=8)
    out = "".join(line for line in capsys.readouterr().out.splitlines(True) if not line.startswith("[precision]"))
    assert out.count("\n") == 1 and "fast_inference ignored" in out and "CUDA GPU" in out
    assert "fast_inference" not in fake_fast.calls[0] and "max_lora_rank" not in fake_fast.calls[0]


def test_gpu_with_vllm_passes_it_through(fake_fast, monkeypatch, capsys) -> None:
    import torch

    real = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a))
    load_model("some/model", fast_inference=True, max_lora_rank=32)
    call = fake_fast.calls[0]
    assert call["fast_inference"] is True and call["max_lora_rank"] == 32 and 0 < call["gpu_memory_utilization"] < 1
    # Only the dtype choice is printed (dtype "auto" on a GPU that cannot say it has bf16 -> float16).
    assert capsys.readouterr().out == "[precision] cuda: the GPU has no bf16 -> float16\n"


def test_gpu_without_vllm_says_so(monkeypatch, capsys) -> None:
    import torch

    real = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    assert fast_inference_args(16) == {}
    assert "vllm is not installed" in capsys.readouterr().out


def test_off_by_default(fake_fast) -> None:
    load_model("some/model")
    assert "fast_inference" not in fake_fast.calls[0]
