"""kit llama-cpp (the offline llama.cpp build), the export's tokenizer check, and the GGUF runtime where built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import kit.training.model  # noqa: F401  -- unsloth before transformers, as in the notebooks
from kit.builders import llama_cpp
from kit.errors import KitError


@pytest.fixture
def unsloth_llama_cpp_restored(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """gguf_requirements points Unsloth at what it finds (variables and module defaults): undone after the test."""
    import sys

    import unsloth_zoo.llama_cpp as zoo

    for name in ("UNSLOTH_LLAMA_CPP_PATH", "UNSLOTH_LLAMA_CPP_OFFLINE", "UNSLOTH_LLAMA_CPP_SCRIPTS_DIR"):
        monkeypatch.setenv(name, "")
    monkeypatch.setattr(zoo.check_llama_cpp, "__defaults__", zoo.check_llama_cpp.__defaults__)
    monkeypatch.setattr(zoo, "LLAMA_CPP_DEFAULT_DIR", zoo.LLAMA_CPP_DEFAULT_DIR)
    save = sys.modules.get("unsloth.save")
    if save is not None and hasattr(save, "LLAMA_CPP_DEFAULT_DIR"):
        monkeypatch.setattr(save, "LLAMA_CPP_DEFAULT_DIR", save.LLAMA_CPP_DEFAULT_DIR)
    return monkeypatch


def test_cache_folder_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KIT_LLAMA_CPP_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert llama_cpp.default_dir() == tmp_path / ".cache" / "unsloth-notebook-kit" / "llama.cpp-0.3.36"
    monkeypatch.setenv("KIT_LLAMA_CPP_DIR", str(tmp_path / "elsewhere"))
    assert llama_cpp.default_dir() == tmp_path / "elsewhere"
    assert llama_cpp.find_build() is None  # nothing there


def test_missing_cmake_or_compiler_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(llama_cpp.shutil, "which", lambda name: None)
    with pytest.raises(KitError) as info:
        llama_cpp.build_llama_cpp(tmp_path / "cache")
    message = str(info.value)
    assert "cmake and a C++ compiler" in message and "apt-get install cmake g++" in message and "\n" not in message


def test_no_sdist_anywhere_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for llama-cpp-python\n")

    monkeypatch.setattr(llama_cpp.subprocess, "run", refuse)
    with pytest.raises(KitError) as info:
        llama_cpp.fetch_sdist(tmp_path / "empty")
    message = str(info.value)
    assert "llama-cpp-python==0.3.36" in message and "No matching distribution" in message and "empty" in message


def test_an_unfinished_build_is_not_used(tmp_path: Path) -> None:
    (tmp_path / llama_cpp.INFO_FILE).write_text(json.dumps({"version": llama_cpp.VERSION, "seconds": 3}), "utf-8")
    assert llama_cpp.find_build(tmp_path) is None  # the marker alone, without the quantizer and the library


def test_a_gguf_with_the_wrong_tokenizer_type_is_caught(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The SmolLM2 failure: a byte-level BPE written as SentencePiece ('llama') is one line naming the fix."""
    import gguf
    from transformers import AutoTokenizer

    from kit.export.save import check_gguf_tokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tokens = [tok.convert_ids_to_tokens(i) for i in range(len(tok))]

    def write(path: Path, kind: str, eos: int) -> Path:
        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_tokenizer_model(kind)
        writer.add_token_list(tokens)
        writer.add_eos_token_id(eos)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path

    with pytest.raises(KitError, match=r"tokenizer type 'llama', but the model's tokenizer is 'gpt2'.*Fix: "):
        check_gguf_tokenizer(write(tmp_path / "spm.gguf", "llama", tok.eos_token_id), tok)
    with pytest.raises(KitError, match="EOS id"):
        check_gguf_tokenizer(write(tmp_path / "eos.gguf", "gpt2", tok.eos_token_id + 1), tok)
    assert check_gguf_tokenizer(write(tmp_path / "ok.gguf", "gpt2", tok.eos_token_id), tok)["tokenizer"] == "gpt2"


def test_kit_finds_the_cached_build_for_unsloth(unsloth_llama_cpp_restored: pytest.MonkeyPatch) -> None:
    build = llama_cpp.find_build()
    if build is None:
        pytest.skip("llama.cpp is not built on this machine (kit llama-cpp builds it once)")
    from kit.export.save import gguf_requirements

    check = gguf_requirements(offline=True)
    assert check.ok, str(check)
    assert check.found["llama_cpp"] == str(build.llama_cpp)
    out = subprocess.run([sys.executable, "-m", "kit", "llama-cpp"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith(f"llama.cpp: cached in {build.root}")
