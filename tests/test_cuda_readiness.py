"""What a code reading says would break on CUDA, simulated on CPU: precision that follows the model's dtype
(a monkeypatched ``torch.cuda``), Unsloth's dict return from a CUDA GGUF export (a stub model), the GGUF
check using Unsloth's own llama.cpp lookup and going offline, and the Ollama Modelfile from a real tokenizer."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import kit.training.model  # noqa: F401  -- unsloth before trl, as in the notebooks
from kit.export.save import gguf_requirements, modelfile_text, save_gguf
from kit.training.config import precision_flags


@pytest.fixture
def bf16_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """An Ampere-or-newer GPU as far as precision_flags can tell."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


@pytest.mark.parametrize(("dtype", "expected"), [
    ("float16", {"bf16": False, "fp16": True}),    # Unsloth raises on an fp16 model asked for bf16
    ("bfloat16", {"bf16": True, "fp16": False}),
    ("float32", {"bf16": False, "fp16": False}),   # no autocast asked for a float32 model
])
def test_precision_follows_the_model_dtype_on_a_bf16_gpu(bf16_gpu: None, dtype: str, expected: dict) -> None:
    import torch

    assert precision_flags(dtype) == expected
    assert precision_flags(getattr(torch, dtype)) == expected
    assert precision_flags(SimpleNamespace(dtype=getattr(torch, dtype))) == expected  # a model


def test_precision_on_cpu_leaves_the_model_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for dtype in ("float16", "bfloat16", "float32", None):
        assert precision_flags(dtype) == {"bf16": False, "fp16": False}


def test_precision_defaults_to_the_last_loaded_model(bf16_gpu: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch

    monkeypatch.setattr(sys.modules["kit.training.model"], "last_loaded_dtype", "float16")
    assert precision_flags() == {"bf16": False, "fp16": True}
    from kit.training.config import _with_defaults

    assert _with_defaults({})["fp16"] is True and _with_defaults({})["bf16"] is False
    monkeypatch.setattr(sys.modules["kit.training.model"], "last_loaded_dtype", None)
    assert precision_flags() == {"bf16": True, "fp16": False}  # nothing loaded: the GPU's best
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision_flags() == {"bf16": False, "fp16": True}  # T4 / V100


def test_load_model_records_the_compute_dtype(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kit.training.model import compute_dtype, load_model

    monkeypatch.setattr(sys.modules["kit.training.model"], "last_loaded_dtype", None)
    model, _ = load_model(str(tiny_model_dir), max_seq_length=64, load_in_4bit=False, dtype="float32")
    assert sys.modules["kit.training.model"].last_loaded_dtype == "float32" == compute_dtype(model)
    quantized = SimpleNamespace(dtype="torch.float16", config=SimpleNamespace(
        quantization_config={"bnb_4bit_compute_dtype": "bfloat16"}))
    assert compute_dtype(quantized) == "bfloat16"  # a 4-bit model computes in its compute dtype


def _fake_llama_cpp(folder: Path) -> Path:
    folder.mkdir(parents=True)
    quantize = folder / "llama-quantize"
    quantize.write_text("#!/bin/sh\necho 'usage: llama-quantize'\n", encoding="utf-8")
    quantize.chmod(0o755)
    (folder / "convert_hf_to_gguf.py").write_text("", encoding="utf-8")
    (folder / "gguf-py").mkdir()
    return folder


@pytest.fixture
def llama_cpp_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No llama.cpp anywhere, and every variable and Unsloth default the check touches restored afterwards."""
    import unsloth_zoo.llama_cpp as zoo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KIT_LLAMA_CPP_DIR", raising=False)  # the kit's own build is looked for under HOME
    for name in ("UNSLOTH_LLAMA_CPP_PATH", "UNSLOTH_LLAMA_CPP_OFFLINE", "UNSLOTH_LLAMA_CPP_SCRIPTS_DIR",
                 "UNSLOTH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "")
    monkeypatch.setattr(zoo.check_llama_cpp, "__defaults__", (str(tmp_path / "unsloth-default"),))
    monkeypatch.setattr(zoo, "LLAMA_CPP_DEFAULT_DIR", zoo.LLAMA_CPP_DEFAULT_DIR)
    save = sys.modules.get("unsloth.save")  # imported on CUDA machines only (it needs Triton)
    if save is not None:
        monkeypatch.setattr(save, "LLAMA_CPP_DEFAULT_DIR", save.LLAMA_CPP_DEFAULT_DIR)
    return monkeypatch


def test_gguf_check_points_unsloth_at_what_it_found_and_goes_offline(llama_cpp_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    import unsloth_zoo.llama_cpp as zoo

    folder = _fake_llama_cpp(tmp_path / "llama.cpp")  # ./llama.cpp: where Unsloth itself would not look
    llama_cpp_env.setenv("HF_HUB_OFFLINE", "1")
    check = gguf_requirements(require_gpu=False)
    assert check.ok, str(check)
    assert os.environ["UNSLOTH_LLAMA_CPP_PATH"] == str(folder)
    assert os.environ["UNSLOTH_LLAMA_CPP_OFFLINE"] == "1"  # Unsloth ignores HF_HUB_OFFLINE for its converter
    assert os.environ["UNSLOTH_LLAMA_CPP_SCRIPTS_DIR"] == str(folder)
    # The export's own lookup (check_llama_cpp() with its default) now finds the same tools: ready means ready.
    assert zoo.check_llama_cpp() == (str(folder / "llama-quantize"), str(folder / "convert_hf_to_gguf.py"))
    assert zoo.LLAMA_CPP_DEFAULT_DIR == str(folder)
    if "unsloth.save" in sys.modules:
        assert sys.modules["unsloth.save"].LLAMA_CPP_DEFAULT_DIR == str(folder)


def test_gguf_check_rejects_what_unsloth_would_reject(llama_cpp_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "llama.cpp"
    (folder / "build" / "bin").mkdir(parents=True)
    (folder / "build" / "bin" / "llama-quantize").write_text("", encoding="utf-8")  # Unsloth looks only in the folder
    (folder / "convert_hf_to_gguf.py").write_text("", encoding="utf-8")
    check = gguf_requirements(require_gpu=False)
    assert not check.ok
    assert f"{folder}: Unsloth: No working quantizer found" in str(check)
    offline_no_gguf = _fake_llama_cpp(tmp_path / "other")
    (offline_no_gguf / "gguf-py").rmdir()
    llama_cpp_env.setenv("UNSLOTH_LLAMA_CPP_PATH", str(offline_no_gguf))
    llama_cpp_env.setitem(sys.modules, "gguf", None)  # `import gguf` fails
    check = gguf_requirements(require_gpu=False, offline=True)
    assert not check.ok and "the gguf package for the converter" in str(check)


class _StubModel:
    """Stands in for a model whose ``save_pretrained_gguf`` returns what Unsloth returns on CUDA or on CPU."""

    def __init__(self, returns: str) -> None:
        self.returns = returns

    def save_pretrained_gguf(self, out_dir: str, tokenizer: object, quantization_method: str) -> object:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        gguf = out / f"model.{quantization_method.upper()}.gguf"
        gguf.write_bytes(b"GGUF")
        if self.returns == "dict":  # unsloth/save.py on CUDA
            return {"save_directory": out_dir, "gguf_directory": out_dir, "gguf_files": [str(gguf)],
                    "modelfile_location": None, "want_full_precision": False, "is_vlm": False, "fix_bos_token": False}
        return [str(gguf)]  # unsloth_zoo's CPU fallback


@pytest.mark.parametrize("returns", ["dict", "list"])
def test_save_gguf_returns_files_for_dict_and_list(llama_cpp_env: pytest.MonkeyPatch, tmp_path: Path,
                                                   tiny_tokenizer: object, returns: str) -> None:
    _fake_llama_cpp(tmp_path / "llama.cpp")
    llama_cpp_env.setattr("kit.export.save.gguf_requirements", lambda: SimpleNamespace(ok=True))
    files = save_gguf(_StubModel(returns), tiny_tokenizer, tmp_path / "gguf", quantization_method="q4_k_m")
    assert files == [str(tmp_path / "gguf" / "model.Q4_K_M.gguf")]  # file paths, never the dict's key names
    modelfile = (tmp_path / "gguf" / "Modelfile").read_text(encoding="utf-8")
    assert modelfile.splitlines()[1] == "FROM ./model.Q4_K_M.gguf"


@pytest.fixture
def tiny_tokenizer(tiny_model_dir: Path) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def test_modelfile_carries_chat_template_and_eos_stop(tiny_tokenizer: object) -> None:
    text = modelfile_text(tiny_tokenizer, "/x/model.Q8_0.gguf")
    assert tiny_tokenizer.eos_token == "<|im_end|>"
    assert 'PARAMETER stop "<|im_end|>"' in text.splitlines() and 'PARAMETER stop "<|im_start|>"' in text.splitlines()
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    assert "{{ range .Messages }}" in template.replace("{{-", "{{") and template.endswith("<|im_start|>assistant\n")
    # The Go template renders a conversation the way the tokenizer's own chat template does.
    rendered = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                  add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_modelfile_for_an_alpaca_trained_model(tiny_tokenizer: object) -> None:
    from kit.formatting.prompts import render_prompt

    text = modelfile_text(tiny_tokenizer, "model.gguf", template="alpaca_en")
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    assert template.replace("{{ .Prompt }}", "Say hi") == render_prompt({"instruction": "Say hi"}, "alpaca_en")
    assert text.count("PARAMETER stop") == 1 and 'PARAMETER stop "<|im_end|>"' in text
