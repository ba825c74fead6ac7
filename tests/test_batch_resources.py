"""How ``--jobs`` splits GPUs and CPU threads, with a fake ``nvidia-smi`` (no GPU needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kit.batch import resources

FAKE_SMI = """#!/bin/sh
if [ "$1" = "-L" ]; then
  echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa)"
  echo "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb)"
else
  echo "0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559"
  echo "1, GPU-bbbb, NVIDIA H100 80GB HBM3, 81559"
fi
"""


@pytest.fixture(autouse=True)
def fresh_caches():
    resources.visible_gpus.cache_clear()
    resources.detect_device.cache_clear()
    yield
    resources.visible_gpus.cache_clear()
    resources.detect_device.cache_clear()


def test_each_job_gets_its_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    slots, note = resources.job_slots(2)
    assert [s.env for s in slots] == [{"CUDA_VISIBLE_DEVICES": "2"}, {"CUDA_VISIBLE_DEVICES": "3"}]
    assert note == "2 jobs, one GPU each"
    slots, note = resources.job_slots(3)
    assert slots[2].env == {"CUDA_VISIBLE_DEVICES": "2"} and "jobs share them" in note
    assert resources.job_slots(1)[0][0].env == {}


@pytest.mark.parametrize("value", ["", "-1"])
def test_no_visible_gpu_means_cpu_threads(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    monkeypatch.setattr(resources, "cpu_cores", lambda: 16)
    slots, note = resources.job_slots(3)
    assert [s.env for s in slots] == [{"OMP_NUM_THREADS": "5", "MKL_NUM_THREADS": "5"}] * 3
    assert note == "3 jobs on CPU, 5 threads each"
    monkeypatch.setattr(resources, "cpu_cores", lambda: 2)
    assert resources.job_slots(4)[0][0].env["OMP_NUM_THREADS"] == "1"


def test_nvidia_smi_detection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert resources.visible_gpus() == ("0", "1")
    assert resources.detect_device("1") == {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "memory_gb": 79.65}
    assert resources.detect_device("GPU-aaaa")["name"] == "NVIDIA H100 80GB HBM3"


def test_cpu_device_detection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    device = resources.detect_device()
    assert device["type"] == "cpu" and device["name"] and device["memory_gb"] > 0
