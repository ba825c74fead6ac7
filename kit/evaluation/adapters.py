"""Where notebook 05 finds the LoRA adapters it compares: local folders, a Google Drive path, or hub adapter ids.

05 runs on its own (Colab from the badge, a fresh runtime), so the adapters that 01, 02 and 04 made may be in
another runtime. :func:`find_adapters` keeps those it can find, says which it skipped and why, and when it
finds none stops with one message naming the notebooks that make them (a :class:`KitError`: one line in
Jupyter and papermill, no traceback).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from kit.errors import KitError
from kit.evaluation.scoring import EVAL_SET_FILE
from kit.paths import resolve_path

ADAPTER_CONFIG = "adapter_config.json"
# Which notebook saves the adapter of each default name in notebook 05 (into its output_dir).
MADE_BY = {"alpaca": "01_alpaca_sft", "medical": "02_medical_sft", "grpo": "03_grpo_reasoning",
           "dpo": "04_dpo_preference"}
DRIVE = Path("/content/drive")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# Adapter repositories can carry training checkpoints: only the adapter, tokenizer and eval set are fetched.
_HUB_SKIP = ["checkpoint-*", "checkpoint-*/*", "*.pt", "*.pth", "runs/*"]


class NoAdapters(KitError):
    """None of the adapters named could be found; the message says which notebooks make them."""


def find_adapter(source: str | os.PathLike[str]) -> tuple[Path | None, str]:
    """The local folder holding the adapter ``source`` names (folder, Drive path or hub id), or None and why."""
    text = os.fspath(source)
    local = resolve_path(text)
    if (local / ADAPTER_CONFIG).is_file():
        return local, ""
    if local.exists():
        return None, f"{local} holds no {ADAPTER_CONFIG}"
    if local.is_relative_to(DRIVE) and not (DRIVE / "MyDrive").is_dir():
        return None, (f"{text} is on Google Drive, which is not mounted "
                      "(run: from google.colab import drive; drive.mount('/content/drive'))")
    if _HUB_ID.fullmatch(text):
        return _from_hub(text)
    return None, f"{text}: no such folder"


def _from_hub(repo_id: str) -> tuple[Path | None, str]:
    """Download (or take from the cache when offline) the adapter repository ``repo_id``."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, ignore_patterns=_HUB_SKIP))
    except Exception as exc:  # offline, not found, gated: each is a reason, not a crash
        offline = " (HF_HUB_OFFLINE is set and it is not in the cache)" if os.environ.get("HF_HUB_OFFLINE") else ""
        return None, f"{repo_id}: not a local folder, and not on the hub{offline}: {type(exc).__name__}"
    if not (folder / ADAPTER_CONFIG).is_file():
        return None, f"{repo_id}: the hub repository holds no {ADAPTER_CONFIG}"
    return folder, ""


def find_adapters(adapters: Mapping[str, str | os.PathLike[str]], *, need_eval_set: bool = True) -> dict[str, Path]:
    """``name -> local adapter folder`` for every adapter found, in the order given; prints what it skipped.

    With ``need_eval_set`` an adapter counts only if its folder holds ``eval_set.jsonl`` (the held-out set its
    training notebook saved). Raises :class:`NoAdapters` when none is left.
    """
    found: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for name, source in adapters.items():
        folder, why = find_adapter(source)
        if folder is not None and need_eval_set and not (folder / EVAL_SET_FILE).is_file():
            folder, why = None, f"{folder} holds no {EVAL_SET_FILE} (its training notebook writes one)"
        if folder is None:
            skipped[name] = why
        else:
            found[name] = folder
    for name, why in skipped.items():
        print(f"skipped adapter {name!r}: {why}; {_maker(name)} makes it")
    if not found:
        wanted = ", ".join(f"{name} ({why})" for name, why in skipped.items()) or "none named"
        makers = ", ".join(dict.fromkeys(_maker(name) for name in adapters)) or _maker("")
        raise NoAdapters(
            f"no adapters found: {wanted}. Run {makers} first (in this runtime, or with output_dir on a "
            "mounted Drive), or set `adapters` to adapter folders, a Drive path or hub adapter ids (user/name)"
        )
    for name, folder in found.items():
        print(f"adapter {name!r}: {folder}")
    return found


def _maker(name: str) -> str:
    return MADE_BY.get(name, "a training notebook (01, 02, 03 or 04)")


def training_setup(folder: str | os.PathLike[str]) -> dict[str, object]:
    """How an adapter was trained, from the ``metrics.json`` its notebook wrote next to it: ``notebook``,
    ``model_name``, ``load_in_4bit`` and ``dtype`` (``None`` where it was not recorded), so 05 can load the base
    the same way and judge each adapter by the metric its notebook used."""
    import json

    path = Path(folder) / "metrics.json"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        payload = {}
    parameters = payload.get("parameters") or {}
    return {"notebook": payload.get("notebook"), "model_name": parameters.get("model_name"),
            "load_in_4bit": parameters.get("load_in_4bit"), "dtype": parameters.get("dtype")}


def generative(setup: Mapping[str, object]) -> bool:
    """True for adapters judged by their generated answers (the SFT notebooks 01 and 02); DPO adapters are judged
    by held-out reward accuracy and GRPO adapters by answer accuracy, both in their own eval blocks."""
    return str(setup.get("notebook") or "").startswith(("01_", "02_"))
