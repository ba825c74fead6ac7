"""Saving fine-tuned models: merged 16-bit weights anywhere, GGUF only where its tools can run.

GGUF export (Unsloth's ``save_pretrained_gguf``) needs llama.cpp's ``llama-quantize`` and converter;
without them Unsloth clones and builds llama.cpp (network) late, after a long merge. :func:`gguf_requirements`
checks up front with Unsloth's own lookup (``unsloth_zoo.llama_cpp.check_llama_cpp``, the folder
``$UNSLOTH_LLAMA_CPP_PATH`` or ``~/.unsloth/llama.cpp``), points Unsloth at what it found, and keeps the
export offline when the machine is (``UNSLOTH_LLAMA_CPP_OFFLINE=1``; Unsloth ignores ``HF_HUB_OFFLINE``).
Every GGUF export gets an Ollama ``Modelfile`` next to it (:func:`modelfile_text`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUANTIZE_NAMES = ("llama-quantize", "quantize")
CONVERTER = "convert_hf_to_gguf.py"
OFFLINE_VARIABLES = ("UNSLOTH_LLAMA_CPP_OFFLINE", "UNSLOTH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
BUILD_HINT = (
    "git clone https://github.com/ggml-org/llama.cpp ~/.unsloth/llama.cpp && "
    "cmake -B ~/.unsloth/llama.cpp/build ~/.unsloth/llama.cpp && "
    "cmake --build ~/.unsloth/llama.cpp/build --target llama-quantize && "
    "cp ~/.unsloth/llama.cpp/build/bin/llama-quantize ~/.unsloth/llama.cpp/"
)


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


def _is_offline() -> bool:
    return any(os.environ.get(name, "").strip().upper() in ("1", "ON", "TRUE", "YES") for name in OFFLINE_VARIABLES)


def llama_cpp_candidates() -> list[Path]:
    """Folders to try, in order: ``$UNSLOTH_LLAMA_CPP_PATH``, the folder Unsloth bound at import, ``~/.unsloth/llama.cpp``,
    ``./llama.cpp``."""
    candidates: list[Path] = []
    if os.environ.get("UNSLOTH_LLAMA_CPP_PATH"):
        candidates.append(Path(os.environ["UNSLOTH_LLAMA_CPP_PATH"]))
    zoo = sys.modules.get("unsloth_zoo.llama_cpp")
    if zoo is not None:
        candidates.append(Path(zoo.check_llama_cpp.__defaults__[0]))
    candidates += [Path.home() / ".unsloth" / "llama.cpp", Path("llama.cpp").resolve()]
    unique: list[Path] = []
    for path in candidates:
        if path.expanduser().resolve() not in unique:
            unique.append(path.expanduser().resolve())
    return unique


def _point_unsloth_at(folder: Path) -> None:
    """Make Unsloth's export use ``folder``: the variable for new processes, and the default Unsloth read at
    import (``check_llama_cpp``'s default argument and ``LLAMA_CPP_DEFAULT_DIR``) for this one."""
    os.environ["UNSLOTH_LLAMA_CPP_PATH"] = str(folder)
    zoo = sys.modules.get("unsloth_zoo.llama_cpp")
    if zoo is None:
        return
    zoo.check_llama_cpp.__defaults__ = (str(folder),)
    for module in (zoo, sys.modules.get("unsloth.save")):
        if module is not None and hasattr(module, "LLAMA_CPP_DEFAULT_DIR"):
            module.LLAMA_CPP_DEFAULT_DIR = str(folder)


def find_llama_cpp() -> tuple[dict[str, str] | None, list[str]]:
    """``({"llama_cpp", "llama-quantize", "converter"}, [])`` for the first folder Unsloth's own
    ``check_llama_cpp`` accepts (a quantizer that runs, and the converter), else ``(None, reasons)``."""
    from unsloth_zoo.llama_cpp import check_llama_cpp

    reasons = []
    for folder in llama_cpp_candidates():
        if not folder.is_dir():
            reasons.append(f"{folder}: no such folder")
            continue
        try:
            quantizer, converter = check_llama_cpp(str(folder))
        except Exception as exc:  # Unsloth raises RuntimeError naming what it did not find
            reasons.append(f"{folder}: {str(exc).splitlines()[0]}")
            continue
        return {"llama_cpp": str(folder), "llama-quantize": quantizer, "converter": converter}, reasons
    return None, reasons


def gguf_requirements(require_gpu: bool = True, offline: bool | None = None) -> GGUFCheck:
    """Check the GPU and llama.cpp's tools before any merge starts; never installs or downloads.

    When llama.cpp is found, Unsloth is pointed at it (``UNSLOTH_LLAMA_CPP_PATH``); when the machine is offline
    (``offline``, or any of :data:`OFFLINE_VARIABLES` set) ``UNSLOTH_LLAMA_CPP_OFFLINE=1`` keeps Unsloth from
    fetching a converter, and the converter and ``gguf`` package must then be local.
    """
    missing: list[str] = []
    found: dict[str, str] = {}
    offline = _is_offline() if offline is None else offline
    if require_gpu:
        import torch

        if torch.cuda.is_available():
            found["gpu"] = torch.cuda.get_device_name(0)
        else:
            missing.append("a CUDA GPU: this kit exports GGUF on GPU machines only (run this notebook on Colab)")
    tools, reasons = find_llama_cpp()
    if tools is None:
        missing.append(
            "llama.cpp with a working llama-quantize and " + CONVERTER + " in one folder, where Unsloth looks "
            "(~/.unsloth/llama.cpp, or set UNSLOTH_LLAMA_CPP_PATH); otherwise Unsloth clones and builds it during "
            f"the export, which needs the network. Build it: {BUILD_HINT}. Looked in: " + "; ".join(reasons)
        )
    else:
        found.update(tools)
        _point_unsloth_at(Path(tools["llama_cpp"]))
        if offline:
            os.environ["UNSLOTH_LLAMA_CPP_OFFLINE"] = "1"
            # The converter beside the quantizer, so the offline export never needs to fetch one.
            os.environ["UNSLOTH_LLAMA_CPP_SCRIPTS_DIR"] = str(Path(tools["converter"]).parent)
            found["offline"] = "UNSLOTH_LLAMA_CPP_OFFLINE=1"
            gguf_py = Path(tools["llama_cpp"]) / "gguf-py"
            if not gguf_py.is_dir():
                try:
                    import gguf  # noqa: F401
                except ImportError:
                    missing.append(f"the gguf package for the converter: {gguf_py} is missing and `import gguf` fails "
                                   "(pip install gguf, or use a full llama.cpp checkout)")
    return GGUFCheck(ok=not missing, missing=missing, found=found)


def _gguf_paths(result: Any, out_dir: Path) -> list[str]:
    """GGUF file paths from ``save_pretrained_gguf``'s return: a dict with ``gguf_files`` on CUDA (Unsloth's
    ``save.py``), a list on the CPU fallback; files found in ``out_dir`` when it returns neither."""
    if isinstance(result, dict):
        files = result.get("gguf_files") or []
        files = [files] if isinstance(files, (str, os.PathLike)) else files
    elif isinstance(result, (list, tuple)):
        files = result
    else:
        files = []
    paths = [str(f) for f in files if str(f).endswith(".gguf")]
    if not paths:
        paths = sorted(str(p) for p in out_dir.rglob("*.gguf")) + sorted(str(p) for p in Path(f"{out_dir}_gguf").glob("*.gguf"))
    return paths


# An Ollama (Go) template for ChatML models: the kit's tiny model, Qwen2.5 and SmolLM2 all use ChatML.
OLLAMA_CHATML = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)


def _ollama_prompt_template(template: str) -> str:
    """A kit prompt template (``alpaca_en``, ``medical_zh`` or a custom one) as an Ollama template: the user's
    message is the instruction, and the model writes the output."""
    from kit.prompts import get_template

    text = get_template(template, has_input=False)
    prompt = text[: -len("{output}")]
    return prompt.replace("{{", "{").replace("}}", "}").replace("{instruction}", "{{ .Prompt }}")


def modelfile_text(tokenizer: Any, gguf_file: str | Path, template: str | None = None) -> str:
    """An Ollama ``Modelfile`` for ``gguf_file``: FROM, the prompt TEMPLATE the model was trained with, and its
    EOS token as a stop, so ``ollama run`` formats prompts the trained way and stops where the model learned to.

    ``template`` names a kit prompt template (Alpaca-style training); ``None`` uses the tokenizer's chat
    template (ChatML is translated; another Jinja template falls back to the raw prompt, with a note).
    """
    from kit.errors import KitError

    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise KitError("the tokenizer has no eos_token: the Modelfile needs it as the stop token (set tokenizer.eos_token)")
    stops = [eos]
    chat = getattr(tokenizer, "chat_template", None) or ""
    note = ""
    if template is not None:
        body = _ollama_prompt_template(template)
    elif "<|im_start|>" in chat:
        body = OLLAMA_CHATML
        stops += [s for s in ("<|im_end|>", "<|im_start|>") if s not in stops]
    else:
        body = "{{ .Prompt }}"
        note = ("# No prompt template known: prompts go in raw. Pass template= (the kit template the model was\n"
                "# trained with) to save_gguf / modelfile_text to format them as in training.\n")
    if '"""' in body:
        raise KitError('the prompt template contains """, which an Ollama Modelfile cannot quote')
    lines = [f"# Ollama Modelfile written by kit.export: ollama create NAME -f {Path(gguf_file).parent / 'Modelfile'}",
             note.rstrip("\n") if note else None, f"FROM ./{Path(gguf_file).name}", f'TEMPLATE """{body}"""']
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    return "\n".join(line for line in lines if line is not None) + "\n"


def write_modelfile(tokenizer: Any, gguf_file: str | Path, template: str | None = None) -> Path:
    """Write :func:`modelfile_text` as ``Modelfile`` next to ``gguf_file``; returns its path."""
    path = Path(gguf_file).parent / "Modelfile"
    path.write_text(modelfile_text(tokenizer, gguf_file, template), encoding="utf-8")
    return path


def save_merged_16bit(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """Merge the LoRA adapter into the base weights and save them in 16 bits (Unsloth's ``save_pretrained_merged``)."""
    out = Path(out_dir)
    model.save_pretrained_merged(str(out), tokenizer, save_method="merged_16bit")
    return out


def save_gguf(model: Any, tokenizer: Any, out_dir: str | Path, quantization_method: str = "q4_k_m",
              template: str | None = None) -> list[str]:
    """Export GGUF after :func:`gguf_requirements` passed (KitError naming what is missing otherwise); returns
    the GGUF file paths and writes an Ollama ``Modelfile`` next to the first (see :func:`modelfile_text`)."""
    from kit.errors import KitError

    check = gguf_requirements()
    if not check.ok:
        raise KitError(str(check))
    out = Path(out_dir)
    result = model.save_pretrained_gguf(str(out), tokenizer, quantization_method=quantization_method)
    files = _gguf_paths(result, out)
    if not files:
        raise KitError(f"GGUF export wrote no .gguf file under {out} (Unsloth returned {type(result).__name__})")
    print(f"[gguf] Ollama Modelfile: {write_modelfile(tokenizer, files[0], template)}")
    return files
