"""Preference pairs for DPO, from the four common shapes, into the one shape DPOTrainer takes.

Shapes read (they may be mixed in one folder; ``columns=`` maps other column names):

1. flat ``prompt``/``chosen``/``rejected`` strings (``prompt`` may also be a message list);
2. sharegpt ``conversations`` (``{from, value}`` turns, a system turn allowed) with ``chosen``/``rejected`` as one
   message, a list of assistant messages, or a string;
3. Alpaca-style ``instruction``/``input``/``chosen``/``rejected`` (optional ``system`` and ``history`` pairs);
4. ``chosen_messages``/``rejected_messages`` (or ``chosen``/``rejected``) as whole conversations: the prompt is
   everything up to the last user (or tool) turn, which must be the same in both; the rest is the answer. This
   wins over a ``prompt`` column next to them (UltraFeedback-style sets carry both). Anthropic HH strings
   (``"\n\nHuman: ...\n\nAssistant: ..."``) are read as such conversations.

``chat=True`` gives DPOTrainer's conversational form, which it renders with the chat template:
``prompt`` = ``[{"role", "content"}, ...]`` (system first, ending on the user), ``chosen``/``rejected`` =
``[{"role": "assistant", "content": ...}]``. ``chat=False`` (the default for now) gives plain strings: a single
user turn is its text; a longer exchange is written as ``User: ...`` / ``Assistant: ...`` turns separated by
blank lines, after the system text; several assistant messages are joined with a blank line.

Skipped and counted: missing_field, bad_field_type, unknown_role, empty_field (prompt, chosen or rejected
empty), bad_role_order, prompt_not_on_user, prompt_mismatch, chosen_equals_rejected, duplicate.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from kit.data.chat import Skip, Tags, content_text, parse_messages, parse_turn
from kit.data.report import LoadReport
from kit.data.sources import Spec, build_report, load_records, resolve
from kit.data.text import as_text, strip_edges

COLUMNS = ["prompt", "chosen", "rejected"]
SPEC = Spec(
    "preference",
    required=(
        ("prompt", "conversations", "instruction", "chosen_messages"),
        ("chosen", "chosen_messages"),
        ("rejected", "rejected_messages"),
    ),
    optional=("input", "system", "history"),
)
_LABELS = {"user": "User", "assistant": "Assistant", "tool": "Tool"}


def _plain(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Role and content only (DPOTrainer's conversational form); a tool call inside the prompt is refused."""
    if any(m.get("tool_calls") for m in messages):
        raise Skip("bad_role_order")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _answer(value: Any, tags: Tags) -> list[dict[str, str]]:
    """``chosen``/``rejected`` given next to a prompt: a string, one message, or assistant messages."""
    if isinstance(value, str) or value is None or isinstance(value, bool | int | float):
        text = strip_edges(as_text(value) or "")
        return [{"role": "assistant", "content": text}] if text else []
    turns = value if isinstance(value, list) else [value]
    out = []
    for turn in turns:
        message, _ = parse_turn(turn, tags, default_role="assistant")
        if message["role"] != "assistant":
            raise Skip("bad_role_order")
        if message["content"]:
            out.append({"role": "assistant", "content": message["content"]})
    return out


def _is_conversation(value: Any, tags: Tags) -> bool:
    """True if ``value`` is a message list holding a non-assistant turn (shape 4)."""
    if not isinstance(value, list):
        return False
    for turn in value:
        if isinstance(turn, dict):
            role = next((turn[k] for k in tags.role_keys if k in turn), None)
            if role is not None and tags.roles.get(str(role).strip().lower()) not in ("assistant", None):
                return True
    return False


def _split_conversation(turns: Any, tags: Tags) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """A whole conversation → (prompt up to the last user/tool turn, the assistant answer after it)."""
    messages, _ = parse_messages(turns, tags)
    cut = max(i for i, m in enumerate(messages) if m["role"] in ("user", "tool")) + 1
    return messages[:cut], _plain(messages[cut:])


def _alpaca_prompt(row: dict[str, Any], tags: Tags) -> list[dict[str, Any]]:
    instruction, source = as_text(row.get("instruction")), as_text(row.get("input"))
    if instruction is None or source is None:
        raise Skip("bad_field_type")
    instruction, source = strip_edges(instruction), strip_edges(source)
    if not instruction:
        raise Skip("empty_field")
    turns: list[dict[str, Any]] = []
    history = row.get("history") or []
    if not isinstance(history, list):
        raise Skip("bad_field_type")
    for pair in history:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise Skip("bad_field_type")
        turns += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    user = f"{instruction}\n\n{source}" if source else instruction
    turns.append({"role": "user", "content": user})
    return parse_messages(turns, tags, row.get("system"), end="user")[0]


_HH_TURN = re.compile(r"\s*(Human|Assistant):", re.MULTILINE)
_HH_SPLIT = re.compile(r"(?:^|\n\n)(Human|Assistant): ?")


def _hh_turns(text: str) -> list[dict[str, str]]:
    """``"\n\nHuman: hi\n\nAssistant: hello"`` (Anthropic HH) → user/assistant messages."""
    parts = _HH_SPLIT.split(text.strip())
    roles = {"Human": "user", "Assistant": "assistant"}
    return [{"role": roles[parts[i]], "content": parts[i + 1]} for i in range(1, len(parts) - 1, 2)]


def _prompt_and_answers(row: dict[str, Any], tags: Tags) -> tuple[list[dict[str, Any]], Any, Any, str]:
    """(prompt messages, chosen, rejected, shape fix name) for one row of any shape; raises :class:`Skip`."""
    chosen = row.get("chosen_messages", row.get("chosen"))
    rejected = row.get("rejected_messages", row.get("rejected"))
    if chosen is None or rejected is None:
        raise Skip("missing_field")
    if (
        isinstance(chosen, str)
        and isinstance(rejected, str)
        and _HH_TURN.match(chosen)
        and _HH_TURN.match(rejected)
    ):
        chosen, rejected = _hh_turns(chosen), _hh_turns(rejected)  # Anthropic HH: the dialogue as one string
        shape = "from_hh_text"
    else:
        shape = "from_chosen_messages"
    # Whole conversations (shape 4): their shared beginning is the prompt, even where a prompt column exists.
    if "chosen_messages" in row or _is_conversation(chosen, tags):
        prompt, chosen_answer = _split_conversation(chosen, tags)
        other, rejected_answer = _split_conversation(rejected, tags)
        if _plain(prompt) != _plain(other):
            raise Skip("prompt_mismatch")
        return prompt, chosen_answer, rejected_answer, shape
    if "conversations" in row:
        prompt = parse_messages(row["conversations"], tags, row.get("system"), end="user")[0]
        shape = "from_sharegpt"
    elif "instruction" in row:
        prompt, shape = _alpaca_prompt(row, tags), "from_alpaca"
    elif "prompt" in row:
        raw = row["prompt"]
        if isinstance(raw, list):
            prompt, shape = parse_messages(raw, tags, row.get("system"), end="user")[0], "from_messages"
        else:
            text = as_text(raw)
            if text is None:
                raise Skip("bad_field_type")
            if not strip_edges(text):
                raise Skip("empty_field")
            prompt = parse_messages([{"role": "user", "content": text}], tags, row.get("system"), end="user")[
                0
            ]
            shape = ""
    else:
        raise Skip("missing_field")
    return prompt, _answer(chosen, tags), _answer(rejected, tags), shape


def messages_to_text(messages: list[dict[str, Any]]) -> str:
    """The plain-string prompt for a message list (system text first; see the module doc)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m["content"])
    dialogue = [m for m in messages if m["role"] != "system" and m["content"]]
    if len(dialogue) == 1 and dialogue[0]["role"] == "user":
        body = dialogue[0]["content"]
    else:
        body = "\n\n".join(f"{_LABELS.get(m['role'], m['role'])}: {m['content']}" for m in dialogue)
    return f"{system}\n\n{body}" if system and body else body


def conversation_to_prompt(turns: list[Any]) -> str:
    """The prompt string for a sharegpt ``conversations`` list (kept for callers of the flat form)."""
    messages = [parse_turn(turn, Tags())[0] for turn in turns]
    return messages_to_text(messages)


def _converter(tags: Tags, chat: bool):
    def convert(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, tuple[str, ...]]:
        try:
            prompt, chosen, rejected, shape = _prompt_and_answers(row, tags)
            prompt = _plain(prompt)
        except Skip as skip:
            return None, skip.reason, ()
        except ValueError:  # max() of no user turn: a conversation without a prompt
            return None, "prompt_not_on_user", ()
        if not prompt or not chosen or not rejected:
            return None, "empty_field", ()
        if chosen == rejected:
            return None, "chosen_equals_rejected", ()
        fixes = (shape,) if shape else ()
        if chat:
            return {"prompt": prompt, "chosen": chosen, "rejected": rejected}, None, fixes
        flat = {
            "prompt": messages_to_text(prompt),
            "chosen": "\n\n".join(m["content"] for m in chosen),
            "rejected": "\n\n".join(m["content"] for m in rejected),
        }
        return flat, None, fixes

    return convert


def _key(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)


def load_preference(
    path: str | os.PathLike[str],
    columns: Mapping[str, str] | str | None = None,
    *,
    chat: bool = False,
    tags: Mapping[str, str] | None = None,
    config: str | None = None,
    split: str | None = None,
) -> tuple[Any, LoadReport]:
    """Load preference pairs of any of the four shapes (module doc) into prompt/chosen/rejected columns.

    ``chat=True``: DPOTrainer's conversational form (message lists, rendered with the chat template);
    ``chat=False``: plain strings. ``tags``: LLaMA-Factory sharegpt tags for the message keys and roles.
    """
    from kit.data.registry import note_unsupported

    where = resolve(path, "preference", columns, config, split)
    convert = _converter(Tags.from_registry({**where.tags, **(tags or {})}), chat)
    label, records, reports, found = load_records(
        where.path, SPEC, convert, key=_key, columns=where.columns, config=where.config, split=where.split
    )
    dataset, report = build_report(
        label,
        SPEC,
        records,
        reports,
        found,
        where.columns,
        text_fields=("prompt", "chosen", "rejected"),
        opening_field="prompt",
    )
    note_unsupported(report, path)
    return dataset, report


__all__ = ["COLUMNS", "content_text", "conversation_to_prompt", "load_preference", "messages_to_text"]
