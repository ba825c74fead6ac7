"""Conversations for chat SFT: sharegpt ``conversations`` and OpenAI-style ``messages``, tool calls included.

One record per conversation: ``{"messages": [{"role", "content", "tool_calls"}], "tools": str | None}``.

- Roles: sharegpt ``human``/``gpt``/``system``/``function_call``/``observation`` become ``user``/``assistant``/
  ``system``/``assistant`` with ``tool_calls``/``tool``; OpenAI roles pass through (``function`` and
  ``ipython`` results become ``tool``). A registry entry's ``tags`` add its own keys and role names.
- Content: a string, or a list of parts whose text sits under ``text`` or ``value`` (joined with newlines); a
  non-text part (image, audio) skips the row (``non_text_content``). Edges are stripped.
- Tool calls: a ``function_call`` turn's JSON (one ``{name, arguments}`` or a list) and OpenAI ``tool_calls``
  both become ``[{"type": "function", "function": {"name", "arguments": JSON string}}]``; ``tool_calls`` is
  None on other turns. ``tools`` (a JSON schema string, list or object) is kept as a JSON string.
- System: a first ``system`` turn wins; else a non-empty ``system`` column becomes the first turn.
- Order: system first (at most one), then user → assistant alternating; tool results only right after an
  assistant tool call (several in a row for parallel calls); the last turn is the assistant's.

Skipped and counted: ``missing_field`` (no messages/conversations), ``bad_field_type``, ``empty_conversation``,
``unknown_role``, ``non_text_content``, ``bad_tool_call``, ``bad_tools``, ``empty_turn``, ``bad_role_order``,
``ends_on_user``, ``duplicate`` (the same messages and tools as an earlier row), ``weight_zero_turn`` (an
OpenAI-style assistant turn with ``weight: 0`` before a trained one: the loss covers every assistant turn, so it
would be trained on; weight-0 turns after the last trained one are cut instead, counted as
``untrained_turns_dropped``), ``missing_value`` (a NaN/None content where text belongs).

:func:`template_inputs` turns a record into what ``tokenizer.apply_chat_template(messages, tools=...)`` takes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kit.data.report import LoadReport
from kit.data.sources import Spec, build_report, load_records, resolve
from kit.data.text import strip_edges

SPEC = Spec("chat", required=(("messages", "conversations"),), optional=("system", "tools"))
ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "function_call": "function_call",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}
_TEXT_PARTS = {"text", "input_text", "output_text"}


class Skip(Exception):
    """A row that breaks a rule; ``reason`` is its skip reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Tags:
    """Which keys hold a turn's role and content, and what each role value means (registry ``tags``)."""

    role_keys: tuple[str, ...] = ("from", "role")
    content_keys: tuple[str, ...] = ("value", "content")
    roles: dict[str, str] = field(default_factory=lambda: dict(ROLES))

    @classmethod
    def from_registry(cls, tags: Mapping[str, str] | None) -> Tags:
        """Tags from a LLaMA-Factory entry's ``tags`` (role_tag, content_tag, user_tag, ...)."""
        out = cls()
        if not tags:
            return out
        if tags.get("role_tag"):
            out.role_keys = (tags["role_tag"], *out.role_keys)
        if tags.get("content_tag"):
            out.content_keys = (tags["content_tag"], *out.content_keys)
        for tag, role in (
            ("user_tag", "user"),
            ("assistant_tag", "assistant"),
            ("system_tag", "system"),
            ("observation_tag", "tool"),
            ("function_tag", "function_call"),
        ):
            if tags.get(tag):
                out.roles[str(tags[tag]).strip().lower()] = role
        return out


def _first(turn: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in turn:
            return turn[key]
    return None


def content_text(value: Any) -> tuple[str, bool]:
    """The text of a content value (string, number, or a list of parts); returns (text, parts were joined)."""
    if value is None:
        return "", False
    if isinstance(value, str):
        return strip_edges(value), False
    if isinstance(value, bool | int | float):
        return str(value), False
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise Skip("bad_field_type")
    texts = []
    for part in value:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise Skip("bad_field_type")
        kind = part.get("type", "text")
        text = part.get("text", part.get("value"))
        if kind not in _TEXT_PARTS or not isinstance(text, str):
            raise Skip("non_text_content" if kind not in _TEXT_PARTS else "bad_field_type")
        texts.append(text)
    return strip_edges("\n".join(t for t in texts if t.strip())), True


def _tool_call(call: Any) -> dict[str, Any]:
    """One tool call as ``{"type": "function", "function": {"name", "arguments": JSON string}}``."""
    if not isinstance(call, dict):
        raise Skip("bad_tool_call")
    function = call.get("function", call)
    if (
        not isinstance(function, dict)
        or not isinstance(function.get("name"), str)
        or not function["name"].strip()
    ):
        raise Skip("bad_tool_call")
    arguments = function.get("arguments", function.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            raise Skip("bad_tool_call") from None
    if not isinstance(arguments, dict):
        raise Skip("bad_tool_call")
    return {
        "type": "function",
        "function": {
            "name": function["name"].strip(),
            "arguments": json.dumps(arguments, ensure_ascii=False),
        },
    }


def _tool_calls(value: Any) -> list[dict[str, Any]]:
    """A function_call turn's value (JSON text, one call or a list) or OpenAI ``tool_calls`` as tool calls."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise Skip("bad_tool_call") from None
    calls = value if isinstance(value, list) else [value]
    if not calls:
        raise Skip("bad_tool_call")
    return [_tool_call(call) for call in calls]


def parse_turn(turn: Any, tags: Tags, default_role: str | None = None) -> tuple[dict[str, Any], bool]:
    """One raw turn → (``{"role", "content", "tool_calls"}``, content parts were joined); raises :class:`Skip`."""
    if not isinstance(turn, dict):
        raise Skip("bad_field_type")
    raw_role = _first(turn, tags.role_keys)
    if raw_role is None and default_role is None:
        raise Skip("unknown_role")
    role = tags.roles.get(str(raw_role).strip().lower()) if raw_role is not None else default_role
    if role is None:
        raise Skip("unknown_role")
    value = _first(turn, tags.content_keys)
    if role == "function_call":
        return {"role": "assistant", "content": "", "tool_calls": _tool_calls(value)}, False
    text, joined = content_text(value)
    calls = None
    if role == "assistant" and (turn.get("tool_calls") or turn.get("function_call")):
        calls = _tool_calls(turn.get("tool_calls") or turn.get("function_call"))
    return {"role": role, "content": text, "tool_calls": calls}, joined


def check_order(messages: list[dict[str, Any]], end: str = "assistant") -> None:
    """Raise :class:`Skip` unless the turns follow the order rules (module doc); ``end``: assistant or user."""
    if not messages:
        raise Skip("empty_conversation")
    body = messages[1:] if messages[0]["role"] == "system" else messages
    if not body:
        raise Skip("empty_conversation")
    previous: dict[str, Any] | None = None
    for message in body:
        role = message["role"]
        if role in ("user", "assistant") and not message["content"] and not message.get("tool_calls"):
            raise Skip("empty_turn")
        after = None if previous is None else previous["role"]
        calling = (
            previous is not None and previous["role"] == "assistant" and bool(previous.get("tool_calls"))
        )
        ok = {
            "user": after is None or (after == "assistant" and not calling),
            "assistant": after in ("user", "tool"),
            "tool": calling or after == "tool",
        }.get(role, False)
        if not ok:
            raise Skip("bad_role_order")
        previous = message
    last = body[-1]["role"]
    if end == "assistant" and last != "assistant":
        raise Skip("ends_on_user")
    if end == "user" and last not in ("user", "tool"):
        raise Skip("prompt_not_on_user")


def parse_tools(value: Any) -> str | None:
    """A tools value as a JSON string (None when absent or empty); raises :class:`Skip` if it is not JSON."""
    if value is None or (isinstance(value, str) and not value.strip()) or value in ([], {}):
        return None
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise Skip("bad_tools") from None
    else:
        parsed = value
    if not isinstance(parsed, list | dict):
        raise Skip("bad_tools")
    return json.dumps(parsed, ensure_ascii=False)


def parse_messages(
    turns: Any, tags: Tags, system: Any = None, *, end: str = "assistant"
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """Turns (+ an optional system column) → checked canonical messages and the fixes made."""
    if not isinstance(turns, list):
        raise Skip("bad_field_type")
    fixes: list[str] = []
    messages = []
    for turn in turns:
        message, joined = parse_turn(turn, tags)
        if joined and "content_parts_joined" not in fixes:
            fixes.append("content_parts_joined")
        messages.append(message)
    if messages and messages[0]["role"] == "system" and not messages[0]["content"]:
        messages = messages[1:]
        fixes.append("empty_system_dropped")
    if (not messages or messages[0]["role"] != "system") and system not in (None, ""):
        text, _ = content_text(system)
        if text:
            messages.insert(0, {"role": "system", "content": text, "tool_calls": None})
            fixes.append("system_from_column")
    check_order(messages, end=end)
    return messages, tuple(fixes)


def _untrained(turn: Any) -> bool:
    """True for an OpenAI-style turn marked ``weight: 0`` (not to be trained on)."""
    if not isinstance(turn, dict) or "weight" not in turn:
        return False
    weight = turn["weight"]
    return weight in (0, False) or (isinstance(weight, str) and weight.strip() in ("0", "0.0"))


def _trained_turns(turns: Any, tags: Tags) -> tuple[Any, bool]:
    """OpenAI ``weight: 0`` turns: the turns after the last trained assistant turn are cut (a fix); a weight-0
    assistant turn before a trained one would be trained too (the loss covers every assistant turn), so the
    conversation is skipped as ``weight_zero_turn``; no trained assistant turn at all is ``weight_zero_turn``."""
    if not isinstance(turns, list) or not any(_untrained(t) for t in turns):
        return turns, False

    def is_assistant(turn: Any) -> bool:
        role = _first(turn, tags.role_keys) if isinstance(turn, dict) else None
        return role is not None and tags.roles.get(str(role).strip().lower()) in ("assistant", "function_call")

    trained = [i for i, t in enumerate(turns) if is_assistant(t) and not _untrained(t)]
    if not trained:
        raise Skip("weight_zero_turn")
    last = trained[-1]
    if any(is_assistant(t) and _untrained(t) for t in turns[:last]):
        raise Skip("weight_zero_turn")
    return turns[: last + 1], last + 1 < len(turns)


def _converter(tags: Tags):
    def convert(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, tuple[str, ...]]:
        turns = row.get("messages", row.get("conversations"))
        if turns is None:
            return None, "missing_field", ()
        if isinstance(turns, str) and turns.lstrip().startswith("["):  # a CSV cell holding the JSON list
            try:
                turns = json.loads(turns)
            except json.JSONDecodeError:
                return None, "bad_field_type", ()
        try:
            turns, cut = _trained_turns(turns, tags)
            messages, fixes = parse_messages(turns, tags, row.get("system"))
            tools = parse_tools(row.get("tools"))
            if cut:
                fixes = (*fixes, "untrained_turns_dropped")
        except Skip as skip:
            return None, skip.reason, ()
        if any(m["tool_calls"] for m in messages):
            fixes = (*fixes, "tool_calls")
        return {"messages": messages, "tools": tools}, None, fixes

    return convert


def chat_features() -> Any:
    """The fixed Arrow schema of chat records (so loads of different files concatenate)."""
    from datasets import Features, List, Value

    call = {"type": Value("string"), "function": {"name": Value("string"), "arguments": Value("string")}}
    message = {"role": Value("string"), "content": Value("string"), "tool_calls": List(call)}
    return Features({"messages": List(message), "tools": Value("string")})


def _key(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def load_chat(
    path: str | os.PathLike[str],
    columns: Mapping[str, str] | str | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    config: str | None = None,
    split: str | None = None,
    dedupe: bool = True,
) -> tuple[Any, LoadReport]:
    """Load conversations (any source :mod:`kit.data.sources` reads) into ``messages``/``tools`` records.

    ``columns`` maps the kit's fields (``messages``, ``system``, ``tools``) to your columns; ``tags`` are
    LLaMA-Factory sharegpt tags (role_tag, content_tag, user_tag, assistant_tag, observation_tag,
    function_tag, system_tag). See the module doc for the rules.
    """
    from kit.data.registry import note_unsupported

    where = resolve(path, "chat", columns, config, split)
    convert = _converter(Tags.from_registry({**where.tags, **(tags or {})}))
    label, records, reports, found = load_records(
        where.path,
        SPEC,
        convert,
        key=_key if dedupe else None,
        columns=where.columns,
        config=where.config,
        split=where.split,
    )
    dataset, report = build_report(
        label,
        SPEC,
        records,
        reports,
        found,
        where.columns,
        features=chat_features(),
        text_fields=("messages",),
        opening_field="messages",
    )
    note_unsupported(report, path)
    return dataset, report


def template_inputs(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """(messages, tools) for ``tokenizer.apply_chat_template(messages, tools=tools)`` from a chat record.

    Chat templates expect tool-call arguments as objects and no ``tool_calls: None`` keys, so both are fixed
    here; ``tools`` becomes a list of schemas.
    """
    messages = []
    for message in record["messages"]:
        out = {"role": message["role"], "content": message.get("content") or ""}
        calls = message.get("tool_calls")
        if calls:
            out["tool_calls"] = [
                {
                    "type": "function",
                    "function": {
                        "name": c["function"]["name"],
                        "arguments": json.loads(c["function"]["arguments"] or "{}"),
                    },
                }
                for c in calls
            ]
        messages.append(out)
    tools = record.get("tools")
    parsed = json.loads(tools) if tools else None
    return messages, (parsed if isinstance(parsed, list) or parsed is None else [parsed])
