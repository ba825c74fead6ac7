"""Preference pairs for DPO, from flat ``prompt/chosen/rejected`` rows or sharegpt-style ``conversations``.

One output shape: columns ``prompt``, ``chosen``, ``rejected`` as plain strings (DPOTrainer's standard,
non-conversational format; apply a prompt template yourself if the model needs one). A sharegpt row's
``conversations`` become the prompt string: system turns first, then a blank line; a single user turn is
its text as is; a longer exchange is written as ``User: ...`` / ``Assistant: ...`` turns separated by blank
lines. ``chosen``/``rejected`` may be strings, one ``{from, value}`` / ``{role, content}`` message, or a list
of messages (their text is joined). Both shapes may be mixed in one folder.
"""

from __future__ import annotations

import os
from typing import Any

from kit.data.jsonrows import load_json_dataset
from kit.data.report import LoadReport
from kit.data.text import as_text, strip_edges

COLUMNS = ["prompt", "chosen", "rejected"]
ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
}
_LABELS = {"user": "User", "assistant": "Assistant"}


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _message(turn: Any) -> tuple[str, str]:
    """(role, text) of one sharegpt or OpenAI-style message."""
    if not isinstance(turn, dict):
        raise _Skip("bad_field_type")
    role = turn.get("from", turn.get("role"))
    text = as_text(turn.get("value", turn.get("content")))
    if text is None:
        raise _Skip("bad_field_type")
    mapped = ROLES.get(str(role).strip().lower()) if role is not None else "assistant"
    if mapped is None:
        raise _Skip("unknown_role")
    return mapped, strip_edges(text)


def _response(value: Any) -> str:
    if isinstance(value, str):
        return strip_edges(value)
    if isinstance(value, dict):
        return _message(value)[1]
    if isinstance(value, list):
        return "\n\n".join(text for _, text in map(_message, value) if text)
    text = as_text(value)
    if text is None:
        raise _Skip("bad_field_type")
    return strip_edges(text)


def conversation_to_prompt(turns: list[Any]) -> str:
    """The prompt string for a sharegpt ``conversations`` list (system turns first; see the module doc)."""
    messages = [_message(turn) for turn in turns]
    system = "\n\n".join(text for role, text in messages if role == "system" and text)
    dialogue = [(role, text) for role, text in messages if role != "system" and text]
    if len(dialogue) == 1 and dialogue[0][0] == "user":
        body = dialogue[0][1]
    else:
        body = "\n\n".join(f"{_LABELS[role]}: {text}" for role, text in dialogue)
    return f"{system}\n\n{body}" if system and body else body


def clean_preference_record(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, tuple[str, ...]]:
    """One raw row (flat or sharegpt) → (record, None, fixes) or (None, skip reason, ())."""
    if "chosen" not in row or "rejected" not in row or ("prompt" not in row and "conversations" not in row):
        return None, "missing_field", ()
    try:
        if "conversations" in row:
            if not isinstance(row["conversations"], list):
                raise _Skip("bad_field_type")
            prompt, shape = conversation_to_prompt(row["conversations"]), "from_sharegpt"
        else:
            raw = row["prompt"]
            prompt = conversation_to_prompt(raw) if isinstance(raw, list) else _response(raw)
            shape = "from_messages" if isinstance(raw, list) else ""
        chosen, rejected = _response(row["chosen"]), _response(row["rejected"])
    except _Skip as skip:
        return None, skip.reason, ()
    if not prompt or not chosen or not rejected:
        return None, "empty_field", ()
    if chosen == rejected:
        return None, "chosen_equals_rejected", ()
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}, None, (shape,) if shape else ()


def load_preference(path: str | os.PathLike[str]) -> tuple[Any, LoadReport]:
    """Load preference pairs (JSON/JSONL file or folder) into plain-string prompt/chosen/rejected columns."""
    return load_json_dataset(
        path, "preference", clean_preference_record, key=lambda r: (r["prompt"], r["chosen"], r["rejected"]),
        columns=COLUMNS, text_fields=("prompt", "chosen", "rejected"), opening_field="prompt",
    )
