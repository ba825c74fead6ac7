"""One entry point for every loader: :func:`load_data` picks the loader by ``kind`` (or by the registry entry
a ``registry:FILE:NAME`` path names); :data:`LOADERS` maps each kind to its loader."""

from __future__ import annotations

import os
from typing import Any

from kit.data.alpaca import load_alpaca
from kit.data.chat import load_chat
from kit.data.gsm8k import load_gsm8k
from kit.data.medical import load_medical
from kit.data.preference import load_preference
from kit.data.registry import parse_registry_path, read_entry
from kit.errors import KitError

LOADERS = {
    "alpaca": load_alpaca,
    "chat": load_chat,
    "medical": load_medical,
    "gsm8k": load_gsm8k,
    "preference": load_preference,
}


def load_data(data_path: str | os.PathLike[str], kind: str | None = None, **options: Any) -> tuple[Any, Any]:
    """Load ``data_path`` with the loader ``kind`` names, or the one its registry entry names.

    Options go to the loader (``columns``, ``config``, ``split``, ...). A registry entry's unsupported fields
    are listed in the first file's notes (``registry_ignored``).
    """
    text = os.fspath(data_path)
    entry = read_entry(*parse_registry_path(text)) if text.startswith("registry:") else None
    if entry is not None:
        if kind is not None and kind != entry.kind:
            raise KitError(
                f"{text}: entry {entry.name!r} is {entry.describe()}, read by --kind {entry.kind}, not {kind}"
            )
        kind = entry.kind
    if kind not in LOADERS:
        raise KitError(f"{text}: say which loader reads it: kind is one of {sorted(LOADERS)}")
    dataset, report = LOADERS[kind](text, **options)
    return dataset, report
