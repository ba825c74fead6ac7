"""Saving fine-tuned models: merged 16-bit weights and GGUF, on any machine (CPU or GPU).

GGUF export needs llama.cpp's ``llama-quantize`` and converter; without them Unsloth clones and builds llama.cpp
(network) late, after a long merge. ``kit llama-cpp`` builds them offline once per machine
(:mod:`kit.builders.llama_cpp`); :func:`gguf_requirements` checks up front with Unsloth's own lookup
(``unsloth_zoo.llama_cpp.check_llama_cpp``: ``$UNSLOTH_LLAMA_CPP_PATH``, the kit's build, ``~/.unsloth/llama.cpp``),
points Unsloth at what it found, and keeps the export offline when the machine is (``UNSLOTH_LLAMA_CPP_OFFLINE=1``).
:func:`export_gguf` writes f16/q8_0/q4_k_m from a merged folder (Unsloth's ``save_pretrained_gguf`` where it
works, else the converter and ``llama-quantize`` directly), checks the tokenizer each GGUF got against the
model's own, and puts an Ollama ``Modelfile`` next to each (:func:`modelfile_text`).
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
BUILD_HINT = "kit llama-cpp (builds it offline from the llama-cpp-python source on the package registry, once per machine)"
GGUF_FORMATS = ("f16", "q8_0", "q4_k_m")


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
    """Folders to try, in order: ``$UNSLOTH_LLAMA_CPP_PATH``, the ``kit llama-cpp`` build, the folder Unsloth bound at
    import, ``~/.unsloth/llama.cpp``, ``./llama.cpp``."""
    from kit.builders.llama_cpp import find_build

    candidates: list[Path] = []
    if os.environ.get("UNSLOTH_LLAMA_CPP_PATH"):
        candidates.append(Path(os.environ["UNSLOTH_LLAMA_CPP_PATH"]))
    build = find_build()
    if build is not None:
        candidates.append(build.llama_cpp)
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
    import unsloth  # noqa: F401  -- unsloth_zoo refuses to import before unsloth
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


def gguf_requirements(require_gpu: bool = False, offline: bool | None = None) -> GGUFCheck:
    """Check llama.cpp's tools (and a GPU only with ``require_gpu``) before any merge starts; never installs or downloads.

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
            missing.append("a CUDA GPU (asked for with require_gpu=True; the export itself runs on a CPU too)")
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


def _ollama_prompt_template(template: str) -> str:
    """A kit prompt template (``alpaca_en``, ``medical_zh`` or a custom one) as an Ollama template: the user's
    message is the instruction, and the model writes the output."""
    from kit.formatting.prompts import get_template

    text = get_template(template, has_input=False)
    prompt = text[: -len("{output}")]
    return prompt.replace("{{", "{").replace("}}", "}").replace("{instruction}", "{{ .Prompt }}")


def modelfile_text(tokenizer: Any, gguf_file: str | Path, template: str | None = None) -> str:
    """An Ollama ``Modelfile`` for ``gguf_file``: FROM, the prompt TEMPLATE the model was trained with (and the
    SYSTEM message its chat template adds by default), and its EOS token as a stop, so ``ollama run`` formats
    prompts the trained way and stops where the model learned to.

    ``template`` names a kit prompt template (Alpaca-style training); ``None`` uses the tokenizer's chat
    template (ChatML is translated and checked on a probe conversation; another Jinja template falls back to
    the raw prompt, with a note).
    """
    from kit.errors import KitError
    from kit.export.ollama_template import chatml_template

    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise KitError("the tokenizer has no eos_token: the Modelfile needs it as the stop token (set tokenizer.eos_token)")
    stops = [eos]
    chat = getattr(tokenizer, "chat_template", None) or ""
    note = ""
    system = None
    if template is not None:
        body = _ollama_prompt_template(template)
    elif "<|im_start|>" in chat:
        body, system = chatml_template(tokenizer)
        stops += [s for s in ("<|im_end|>", "<|im_start|>") if s not in stops]
    else:
        body = "{{ .Prompt }}"
        note = ("# No prompt template known: prompts go in raw. Pass template= (the kit template the model was\n"
                "# trained with) to save_gguf / modelfile_text to format them as in training.\n")
    if '"""' in body or (system and '"""' in system):
        raise KitError('the prompt template contains """, which an Ollama Modelfile cannot quote')
    lines = [f"# Ollama Modelfile written by kit.export.save: ollama create NAME -f {Path(gguf_file).parent / 'Modelfile'}",
             note.rstrip("\n") if note else None, f"FROM ./{Path(gguf_file).name}", f'TEMPLATE """{body}"""',
             f'SYSTEM """{system}"""' if system else None]
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


TOKENIZER_PROBE = "Hello world! In 2024, naïve café costs 3.50 €.\n\n  Indented  text, 日本語 and ünïcödé."


def tokenizer_kind(tokenizer: Any) -> str | None:
    """The GGUF ``tokenizer.ggml.model`` a tokenizer should convert to: ``gpt2`` for byte-level BPE, ``llama``
    for SentencePiece-style BPE/Unigram, None when the kit cannot tell (no fast tokenizer)."""
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    state = json.loads(backend.to_str())
    text = json.dumps({k: state.get(k) for k in ("pre_tokenizer", "decoder")})
    model = state.get("model") or {}
    if model.get("type") == "BPE" and '"ByteLevel"' in text and not model.get("byte_fallback"):
        return "gpt2"
    if model.get("type") == "Unigram" or (model.get("type") == "BPE" and '"Metaspace"' in text):
        return "llama"
    if model.get("type") == "BPE" and '"ByteLevel"' in text:
        return "gpt2?"  # byte-level but with byte_fallback: llama.cpp's converter mistakes it for SentencePiece
    return None


def check_gguf_tokenizer(gguf_file: str | Path, tokenizer: Any) -> dict[str, Any]:
    """Compare the tokenizer a GGUF got with the model's own; a KitError naming the mismatch and its fix.

    Checks the tokenizer type (a byte-level BPE written as SentencePiece loads, then crashes or mis-tokenizes in
    llama.cpp), the EOS id, and the token strings of a probe text.
    """
    from gguf import GGUFReader

    from kit.errors import KitError

    fields = GGUFReader(str(gguf_file)).fields
    got = fields["tokenizer.ggml.model"].contents() if "tokenizer.ggml.model" in fields else None
    expected = tokenizer_kind(tokenizer)
    fix = ("Fix: give the model folder a GPT-2-style tokenizer (tokenizer_class GPT2Tokenizer, vocab.json and "
           "merges.txt, a tokenizer.json without byte_fallback), as the hub's byte-level BPE models ship")
    if expected == "gpt2?" and got != "gpt2":
        raise KitError(f"{gguf_file}: the model's tokenizer is byte-level BPE with byte_fallback, and llama.cpp's "
                       f"converter wrote it as {got!r} (SentencePiece); llama.cpp crashes or mis-tokenizes it. {fix}")
    if expected in ("gpt2", "llama") and got != expected:
        raise KitError(f"{gguf_file}: tokenizer type {got!r}, but the model's tokenizer is {expected!r}; llama.cpp "
                       f"would tokenize differently from training. {fix}")
    eos = fields["tokenizer.ggml.eos_token_id"].contents() if "tokenizer.ggml.eos_token_id" in fields else None
    if tokenizer.eos_token_id is not None and eos != tokenizer.eos_token_id:
        raise KitError(f"{gguf_file}: EOS id {eos}, but the tokenizer's EOS {tokenizer.eos_token!r} is id "
                       f"{tokenizer.eos_token_id}; the runtime would not stop where the model learned to. Fix: set "
                       "eos_token_id in the model folder's config.json and generation_config.json")
    tokens = fields["tokenizer.ggml.tokens"].contents()
    ids = tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]
    wrong = [i for i in ids if i >= len(tokens) or tokens[i] != tokenizer.convert_ids_to_tokens(i)]
    if wrong:
        raise KitError(f"{gguf_file}: token {wrong[0]} is {tokens[wrong[0]] if wrong[0] < len(tokens) else None!r} "
                       f"in the GGUF but {tokenizer.convert_ids_to_tokens(wrong[0])!r} in the tokenizer. {fix}")
    return {"tokenizer": got, "eos_token_id": eos, "probe_tokens": len(ids)}


def _run_tool(cmd: list[str], what: str) -> None:
    import subprocess

    from kit.errors import RunFailed

    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise RunFailed(f"{what} failed (exit {result.returncode}): {lines[-1] if lines else 'no output'}")


def _unsloth_gguf(model: Any, tokenizer: Any, out: Path, formats: tuple[str, ...]) -> tuple[dict[str, Path], str]:
    """GGUF files through Unsloth's ``save_pretrained_gguf``, or ``({}, why not)``."""
    if model is None:
        return {}, "no model object was given (a merged folder only)"
    import torch

    if not torch.cuda.is_available():
        # Measured with unsloth 2026.10.9 on CPU: it looks up a llama.cpp release on api.github.com and then
        # git-clones llama.cpp into ~/.unsloth although UNSLOTH_LLAMA_CPP_PATH points at a working build.
        return {}, ("Unsloth's save_pretrained_gguf on a CPU fetches its own llama.cpp from GitHub (network) even "
                    "with a working build set in UNSLOTH_LLAMA_CPP_PATH")
    if not hasattr(model, "save_pretrained_gguf"):
        return {}, ("Unsloth's save_pretrained_gguf is not bound on this model (Unsloth binds it with unsloth.save, "
                    "which needs a CUDA GPU and Triton)")
    files: dict[str, Path] = {}
    try:
        for fmt in formats:
            result = model.save_pretrained_gguf(str(out / f"unsloth-{fmt}"), tokenizer, quantization_method=fmt)
            found = [p for p in _gguf_paths(result, out / f"unsloth-{fmt}") if fmt.replace("_", "").lower()
                     in Path(p).name.replace("_", "").lower()]
            if not found:
                return {}, f"Unsloth's save_pretrained_gguf wrote no {fmt} file"
            target = out / fmt / f"model-{fmt}.gguf"
            target.parent.mkdir(parents=True, exist_ok=True)
            Path(found[0]).replace(target)
            files[fmt] = target
    except Exception as exc:  # Unsloth's export has many failure modes; the converter path below is the fallback
        return {}, f"Unsloth's save_pretrained_gguf failed: {' '.join(str(exc).split())[:200]}"
    return files, ""


def export_gguf(merged_dir: str | Path, out_dir: str | Path, tokenizer: Any, formats: tuple[str, ...] = GGUF_FORMATS,
                *, model: Any = None, template: str | None = None) -> dict[str, Path]:
    """GGUF files of a merged 16-bit model folder, ``{format: path}``, each in ``out_dir/FORMAT/`` with its Modelfile.

    Tries Unsloth's ``save_pretrained_gguf`` on ``model`` first; where that is unavailable or fails it says why in
    one line and runs llama.cpp's converter (f16) and ``llama-quantize`` (q8_0, q4_k_m, ...) directly. Every file's
    tokenizer is checked against ``tokenizer`` (:func:`check_gguf_tokenizer`) before it counts as exported.
    """
    import shutil
    import tempfile

    from kit.errors import KitError

    unknown = [f for f in formats if f not in ("f32", "f16", "bf16", "q8_0", "q4_k_m", "q5_k_m", "q4_0", "q6_k")]
    if unknown:
        raise KitError(f"unknown GGUF format {unknown[0]!r}; use f16, q8_0 or q4_k_m")
    check = gguf_requirements()
    if not check.ok:
        raise KitError(str(check))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files, why = _unsloth_gguf(model, tokenizer, out, tuple(formats))
    if not files:
        print(f"[gguf] {why}: using llama.cpp's converter and llama-quantize directly")
        converter, quantize = check.found["converter"], check.found["llama-quantize"]
        with tempfile.TemporaryDirectory(prefix="kit-gguf-", dir=out) as tmp:
            base = Path(tmp) / "model-f16.gguf"
            _run_tool([sys.executable, converter, str(merged_dir), "--outtype", "f16", "--outfile", str(base)],
                      f"llama.cpp's converter on {merged_dir}")
            for fmt in formats:
                target = out / fmt / f"model-{fmt}.gguf"
                target.parent.mkdir(parents=True, exist_ok=True)
                if fmt == "f16":
                    shutil.copyfile(base, target)
                else:
                    _run_tool([quantize, str(base), str(target), fmt.upper()], f"llama-quantize {fmt}")
                files[fmt] = target
    for path in files.values():
        check_gguf_tokenizer(path, tokenizer)
        write_modelfile(tokenizer, path, template)
    return files
