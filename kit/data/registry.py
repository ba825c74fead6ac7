"""LLaMA-Factory ``dataset_info.json`` registries: ``registry:FILE:NAME`` data paths and ``--registry FILE NAME``.

An entry names its data (``file_name`` relative to the registry's folder, or ``hf_hub_url`` with optional
``subset`` and ``split``), its ``formatting`` (``alpaca``, the default, or ``sharegpt``), ``ranking`` (a
preference set), ``columns`` (which of the file's columns hold each part) and, for sharegpt, ``tags`` (the
message keys and role names). The kit reads it with the matching loader:

- alpaca → :func:`kit.data.load_alpaca` (prompt→instruction, query→input, response→output, system, history);
- alpaca + ranking → :func:`kit.data.load_preference` (prompt, query, chosen, rejected, system, history);
- sharegpt → :func:`kit.data.load_chat` (messages, system, tools; every tag);
- sharegpt + ranking → :func:`kit.data.load_preference` (messages→conversations, chosen, rejected, system; tags).

Not supported (each is named in the load report's notes when an entry uses it):

- ``ms_hub_url``, ``om_hub_url``, ``script_url``, ``cloud_file_name``: other hubs and loading scripts (an entry
  with only these is an error);
- ``folder``, ``num_samples``: a sub-folder of a hub repository and sampling (ignored);
- ``file_sha1``: not checked (LLaMA-Factory does not check it either);
- columns ``images``, ``videos``, ``audios``: multimodal inputs (ignored);
- column ``kto_tag``: KTO labels (ignored; the rows load as plain SFT);
- column ``tools`` on a ranking entry (ignored: preference records carry no tools);
- pre-training entries (a ``prompt`` column, no response): rows lack an output, so the load keeps 0 rows and
  says which columns it found.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError

# LLaMA-Factory column names → the kit's field names, per loader.
_ALPACA_COLUMNS = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "system": "system",
    "history": "history",
}
_ALPACA_RANKING_COLUMNS = {
    "prompt": "instruction",
    "query": "input",
    "chosen": "chosen",
    "rejected": "rejected",
    "system": "system",
    "history": "history",
}
_SHAREGPT_COLUMNS = {"messages": "messages", "system": "system", "tools": "tools"}
_SHAREGPT_RANKING_COLUMNS = {
    "messages": "conversations",
    "chosen": "chosen",
    "rejected": "rejected",
    "system": "system",
}
TAGS = (
    "role_tag",
    "content_tag",
    "user_tag",
    "assistant_tag",
    "observation_tag",
    "function_tag",
    "system_tag",
)
_UNSUPPORTED_SOURCES = ("ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
_IGNORED_FIELDS = {
    "folder": "a sub-folder of a hub repository",
    "num_samples": "sampling",
    "file_sha1": "not checked",
}
_IGNORED_COLUMNS = {
    "images": "multimodal",
    "videos": "multimodal",
    "audios": "multimodal",
    "kto_tag": "KTO labels",
}
_KNOWN_FIELDS = {
    "hf_hub_url",
    "file_name",
    "formatting",
    "ranking",
    "columns",
    "tags",
    "subset",
    "split",
    *_UNSUPPORTED_SOURCES,
    *_IGNORED_FIELDS,
}


@dataclass
class Entry:
    """One registry entry, translated: which loader reads it, from where, with which mapping and tags."""

    name: str
    registry: Path
    kind: str  # alpaca | chat | preference
    path: str  # a local path or a hub id
    formatting: str
    ranking: bool
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    config: str | None = None
    split: str | None = None
    unsupported: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """E.g. ``"sharegpt (ranking)"``."""
        return self.formatting + (" (ranking)" if self.ranking else "")


def parse_registry_path(text: str) -> tuple[str, str]:
    """``"registry:data/dataset_info.json:NAME"`` → ``("data/dataset_info.json", "NAME")``."""
    body = text[len("registry:") :] if text.startswith("registry:") else text
    file, sep, name = body.rpartition(":")
    if not sep or not file or not name:
        raise KitError(
            f"{text}: write a registry data path as registry:FILE:NAME, e.g. registry:data/dataset_info.json:alpaca_zh"
        )
    return file, name


def registry_path(file: str | os.PathLike[str], name: str) -> str:
    """The ``registry:FILE:NAME`` data path for an entry."""
    return f"registry:{os.fspath(file)}:{name}"


def read_registry(file: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """(resolved path, the registry as a dict); a missing or broken file is a :class:`KitError`."""
    from kit.paths import resolve_path

    path = resolve_path(file)
    if not path.is_file():
        raise KitError(f"{file}: no such registry file; give the path of a LLaMA-Factory dataset_info.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KitError(
            f"{path}: not a JSON registry ({exc}); it should be one object of named entries"
        ) from None
    if not isinstance(data, dict):
        raise KitError(
            f"{path}: a registry is one JSON object {{NAME: entry, ...}}, found {type(data).__name__}"
        )
    return path, data


def read_entry(file: str | os.PathLike[str], name: str) -> Entry:
    """Read and translate entry ``name`` of registry ``file`` (see the module doc)."""
    path, data = read_registry(file)
    if name not in data:
        raise KitError(f"{path}: no entry {name!r}; its entries are {sorted(data)}")
    raw = data[name]
    where = f"{path}: entry {name!r}"
    if not isinstance(raw, dict):
        raise KitError(f"{where} is not an object")
    formatting = str(raw.get("formatting", "alpaca")).lower()
    if formatting not in ("alpaca", "sharegpt"):
        raise KitError(f"{where}: formatting {formatting!r} is not alpaca or sharegpt")
    ranking = bool(raw.get("ranking", False))
    unsupported = [
        f"{key}: not supported ({_IGNORED_FIELDS.get(key, 'another hub or a loading script')})"
        for key in raw
        if key in _UNSUPPORTED_SOURCES or key in _IGNORED_FIELDS
    ]
    unsupported += [f"{key}: unknown field (ignored)" for key in raw if key not in _KNOWN_FIELDS]
    if raw.get("hf_hub_url"):
        source = str(raw["hf_hub_url"])
    elif raw.get("file_name"):
        source = str(path.parent / str(raw["file_name"]))
    else:
        offered = [k for k in _UNSUPPORTED_SOURCES if raw.get(k)]
        raise KitError(
            f"{where}: no file_name or hf_hub_url"
            + (f" (only {offered}, which the kit does not read)" if offered else "")
            + "; add file_name (relative to the registry's folder) or hf_hub_url"
        )
    columns_raw = raw.get("columns") or {}
    tags_raw = raw.get("tags") or {}
    if not isinstance(columns_raw, dict) or not isinstance(tags_raw, dict):
        raise KitError(f"{where}: columns and tags must be objects of names")
    table = {
        ("alpaca", False): _ALPACA_COLUMNS,
        ("alpaca", True): _ALPACA_RANKING_COLUMNS,
        ("sharegpt", False): _SHAREGPT_COLUMNS,
        ("sharegpt", True): _SHAREGPT_RANKING_COLUMNS,
    }[formatting, ranking]
    columns: dict[str, str] = {}
    for key, column in columns_raw.items():
        if key in table:
            columns[table[key]] = str(column)
        elif key in _IGNORED_COLUMNS:
            unsupported.append(f"columns.{key}: not supported ({_IGNORED_COLUMNS[key]}; ignored)")
        elif key == "tools" and ranking:
            unsupported.append("columns.tools: not supported on a ranking entry (ignored)")
        else:
            unsupported.append(f"columns.{key}: not a {formatting} column (ignored)")
    if formatting == "sharegpt" and "messages" not in columns_raw:
        columns[table["messages"]] = "conversations"  # LLaMA-Factory's default
    tags = {key: str(value) for key, value in tags_raw.items() if key in TAGS}
    unsupported += [f"tags.{key}: unknown tag (ignored)" for key in tags_raw if key not in TAGS]
    if formatting == "alpaca" and tags_raw:
        unsupported.append("tags: used by sharegpt entries only (ignored)")
    kind = "preference" if ranking else ("chat" if formatting == "sharegpt" else "alpaca")
    return Entry(
        name=name,
        registry=path,
        kind=kind,
        path=source,
        formatting=formatting,
        ranking=ranking,
        columns=columns,
        tags=tags,
        config=_opt(raw.get("subset")),
        split=_opt(raw.get("split")),
        unsupported=unsupported,
    )


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def list_entries(file: str | os.PathLike[str]) -> list[Entry]:
    """Every entry of a registry that the kit can read (entries it cannot read are left out)."""
    _, data = read_registry(file)
    entries = []
    for name in data:
        try:
            entries.append(read_entry(file, name))
        except KitError:
            continue
    return entries


def note_unsupported(report: Any, data_path: str | os.PathLike[str]) -> None:
    """Put a registry entry's unsupported fields into the first file's notes (no-op for other data paths)."""
    text = os.fspath(data_path)
    if not text.startswith("registry:") or not report.files:
        return
    entry = read_entry(*parse_registry_path(text))
    report.files[0].notes["registry_entry"] = f"{entry.name} ({entry.describe()}) from {entry.registry}"
    if entry.unsupported:
        report.files[0].notes["registry_ignored"] = list(entry.unsupported)
