"""Train and prompt instruction models in their own chat format; catch a wrong EOS before training.

``template="auto"`` (the default everywhere here) renders records through the tokenizer's own chat template
when it has one, else through the Alpaca text template (``fallback``); ``"chat"`` insists on the chat
template; a name from :data:`kit.formatting.prompts.TEMPLATES` (or a custom format string) picks that text template.

Chat training data is pre-tokenized (``input_ids``, ``attention_mask``, ``labels`` with -100 outside the
assistant turns), which TRL 1.15's SFTTrainer and Unsloth's prepare step both use as is. Assistant spans are
found by rendering prefixes of the conversation (``messages[:i]`` with the generation prompt, then
``messages[:i + 1]``), so any chat template works, with or without ``{% generation %}`` markers (SmolLM2's
ChatML has none). Every assistant turn is trained and each trained span ends with the end-of-turn token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kit.errors import KitError
from kit.formatting.prompts import (
    MEDICAL_INSTRUCTION,
    TEMPLATES,
    FormattingError,
    alpaca_formatter,
    get_template,
    render_prompt,
)

# The medical-assistant prompt of kit.formatting.prompts.MEDICAL_ZH, as a system message for chat models.
MEDICAL_SYSTEM = "你是一名专业的医疗助手，请根据指令，准确、清晰地回答患者的问题。"
MEDICAL_QUESTION_LABEL = "问题："
STYLES = ("alpaca", "medical")
_PROBE = "KIT-PROBE-7f3a"
_ROLES = {"system", "user", "assistant", "tool"}


# --- Which template -----------------------------------------------------------------------------------------


def has_chat_template(tokenizer: Any) -> bool:
    """True when the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def default_fallback(style: str = "alpaca") -> str:
    """The text template used when a model has no chat template: medical_zh for medical, else alpaca_en."""
    return "medical_zh" if style == "medical" else "alpaca_en"


def resolve_template(tokenizer: Any, template: str = "auto", *, fallback: str = "alpaca_en") -> str:
    """``"chat"`` or a text template name: what ``template`` means for this tokenizer.

    ``auto`` is the chat template where the tokenizer has one, else ``fallback``; ``chat`` without a chat
    template is an error naming the fix.
    """
    if template == "auto":
        return "chat" if has_chat_template(tokenizer) else fallback
    if template == "chat":
        if not has_chat_template(tokenizer):
            raise FormattingError(
                "template='chat' but the tokenizer has no chat template: use template='auto' (falls back to "
                f"{fallback!r}), a text template {sorted(TEMPLATES)}, or set tokenizer.chat_template"
            )
        return "chat"
    get_template(template)  # a known name or a custom format string, else one clear error
    return template


# --- Records to messages --------------------------------------------------------------------------------------


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    return "" if value is None else str(value)


def _clean_message(message: Any, index: int) -> dict[str, Any]:
    if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
        raise FormattingError(
            f"message {index} is not a {{role, content}} dict with role in {sorted(_ROLES)}: {str(message)[:80]!r}; "
            "load conversations with kit.data.load_chat"
        )
    cleaned = {k: v for k, v in message.items() if v is not None}  # Arrow fills missing keys with None
    cleaned.setdefault("content", "")
    return cleaned


def to_chat_messages(record: Mapping[str, Any], style: str = "alpaca") -> list[dict[str, Any]]:
    """Chat messages for one record; the final assistant turn is left out when the record has no output.

    - conversation records (``messages``): the messages as they are (``None`` keys dropped);
    - Alpaca records: optional ``system``, then each ``history`` pair ``[instruction, response]`` as a
      user/assistant exchange, then the user turn (instruction, a blank line, input) and the ``output``;
    - ``style="medical"``: the medical-assistant system prompt, and the patient's question after 问题：.
    """
    if style not in STYLES:
        raise KitError(f"unknown style {style!r}: use one of {STYLES}")
    if record.get("messages") is not None:
        return [_clean_message(m, i) for i, m in enumerate(record["messages"])]
    system = _text(record, "system").strip() or (MEDICAL_SYSTEM if style == "medical" else "")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for turn in record.get("history") or []:
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise FormattingError(f"history entries must be [instruction, response] pairs, got {str(turn)[:80]!r}")
        messages += [{"role": "user", "content": str(turn[0])}, {"role": "assistant", "content": str(turn[1])}]
    user = _text(record, "instruction").strip() or (MEDICAL_INSTRUCTION if style == "medical" else "")
    source = _text(record, "input").strip()
    if source:
        source = f"{MEDICAL_QUESTION_LABEL}{source}" if style == "medical" else source
        user = f"{user}\n\n{source}" if user else source
    messages.append({"role": "user", "content": user})
    output = _text(record, "output")
    if output:
        messages.append({"role": "assistant", "content": output})
    return messages


def _tools(record: Mapping[str, Any]) -> list[Any] | None:
    tools = record.get("tools")
    if tools in (None, ""):
        return None
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as exc:
            raise FormattingError(f"'tools' is not valid JSON ({exc.msg} at {exc.pos}): {tools[:80]!r}") from None
    return list(tools) if isinstance(tools, list) else [tools]


def _render(tokenizer: Any, messages: Sequence[Mapping[str, Any]], tools: Any, generation: bool = False) -> str:
    return tokenizer.apply_chat_template(
        list(messages), tools=tools, tokenize=False, add_generation_prompt=generation
    )


# --- Tokenizing a conversation with an assistant mask ---------------------------------------------------------


def end_of_turn_token(tokenizer: Any) -> str | None:
    """The token the chat template writes right after an assistant message (``<|im_end|>`` for ChatML), or None.

    Found by rendering a probe exchange and matching the text after the assistant's content against the
    tokenizer's special and added tokens. None when there is no chat template or nothing special follows.
    """
    if not has_chat_template(tokenizer):
        return None
    try:
        text = _render(tokenizer, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _PROBE}], None)
    except Exception:
        return None
    at = text.rfind(_PROBE)
    if at < 0:
        return None
    tail = text[at + len(_PROBE) :].lstrip(" \t\n")
    candidates = {str(t) for t in getattr(tokenizer, "all_special_tokens", []) or []}
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    candidates |= {str(getattr(t, "content", t)) for t in decoder.values()}
    matches = [c for c in candidates if c and tail.startswith(c)]
    return max(matches, key=len) if matches else None


def _drops_tool_calls(tokenizer: Any, messages: list[dict[str, Any]]) -> bool:
    """True when a message carries tool calls whose function names the rendered conversation leaves out."""
    names = [
        str((call.get("function") or {}).get("name") or "")
        for m in messages
        for call in (m.get("tool_calls") or [])
        if isinstance(call, Mapping)
    ]
    names = [n for n in names if n]
    if not names:
        return False
    text = _render(tokenizer, messages, None)  # without tools: a tools list in the system text would name them
    return any(n not in text for n in names)


TOOLS_SYSTEM = (
    "You can call these tools:\n<tools>\n{schemas}\n</tools>\n"
    "To call a tool, answer with <tool_call>{{\"name\": ..., \"arguments\": {{...}}}}</tool_call>."
)


def _call_text(call: Mapping[str, Any]) -> str:
    function = call.get("function") if isinstance(call.get("function"), Mapping) else call
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            pass
    return json.dumps({"name": function.get("name"), "arguments": arguments}, ensure_ascii=False)


def _renders_tools(tokenizer: Any, tools: list[Any]) -> bool:
    names = [str((t.get("function") or t).get("name") or "") for t in tools if isinstance(t, Mapping)]
    try:
        text = _render(tokenizer, [{"role": "user", "content": "hi"}], tools)
    except Exception:
        return False
    return bool(names) and all(n in text for n in names if n)


def inline_tools(tokenizer: Any, messages: list[dict[str, Any]], tools: Any) -> tuple[list[dict[str, Any]], Any]:
    """Messages a chat template without tool support still renders whole, and the ``tools`` to pass it.

    Where the template drops ``tool_calls`` (SmolLM2's and the tiny model's ChatML), each call is written into
    the assistant's content as ``<tool_call>{"name", "arguments"}</tool_call>`` (the Hermes/Qwen convention),
    so the call is trained like any answer; where it ignores ``tools``, their JSON schemas go into the system
    message. Templates that render both get the conversation unchanged.
    """
    out = [dict(m) for m in messages]
    if _drops_tool_calls(tokenizer, out):
        for message in out:
            calls = [c for c in message.pop("tool_calls", None) or [] if isinstance(c, Mapping)]
            if calls:
                text = "\n".join(f"<tool_call>\n{_call_text(c)}\n</tool_call>" for c in calls)
                message["content"] = f"{message.get('content') or ''}\n{text}".strip()
    if tools and not _renders_tools(tokenizer, list(tools)):
        schemas = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
        block = TOOLS_SYSTEM.format(schemas=schemas)
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": f"{out[0].get('content') or ''}\n\n{block}".strip()}
        else:
            out.insert(0, {"role": "system", "content": block})
        tools = None
    return out, tools


def _turn_opener(tokenizer: Any) -> str:
    """What the chat template writes before a user message's content ('' when it cannot render)."""
    try:
        text = _render(tokenizer, [{"role": "user", "content": _PROBE}], None)
    except Exception:
        return ""
    return text[: max(text.find(_PROBE), 0)]


def _spans(tokenizer: Any, messages: list[dict[str, Any]], tools: Any, full: str, stop: str | None) -> list[tuple[int, int]]:
    """Character spans of the assistant turns in ``full``: content plus end-of-turn, trailing newline excluded."""
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start_text = _render(tokenizer, messages[:i], tools, generation=True)
        end_text = _render(tokenizer, messages[: i + 1], tools)
        if not (full.startswith(start_text) and full.startswith(end_text) and len(end_text) > len(start_text)):
            raise FormattingError(
                f"the chat template renders the conversation up to assistant turn {i} differently from the whole "
                "conversation (it rewrites earlier turns), so the assistant tokens cannot be located: train this "
                "model with a text template (template='alpaca_en') or a chat template that renders turns stably"
            )
        start, end = len(start_text), len(end_text)
        body = full[start:end]
        if stop and stop in body and not body[body.rfind(stop) + len(stop) :].strip():
            end = start + body.rfind(stop) + len(stop)  # the span ends on the end-of-turn token
        else:
            end = start + len(body.rstrip())
        spans.append((start, end))
    return spans


def tokenize_conversation(
    tokenizer: Any, messages: Sequence[Mapping[str, Any]], tools: Any = None
) -> tuple[list[int], list[int]]:
    """``(input_ids, assistant_mask)`` of a conversation rendered by the chat template (1 = assistant token).

    Token ids come from tokenizing the whole rendered text once (no special tokens added: the template holds
    them); a token is an assistant token when it starts inside an assistant span.
    """
    messages = [_clean_message(m, i) for i, m in enumerate(messages)]
    full = _render(tokenizer, messages, tools)
    spans = _spans(tokenizer, messages, tools, full, end_of_turn_token(tokenizer))
    try:
        encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(encoded["input_ids"]), [tuple(o) for o in encoded["offset_mapping"]]
    except (NotImplementedError, KeyError, TypeError, ValueError):  # a slow tokenizer: prefix lengths instead
        ids = list(tokenizer(full, add_special_tokens=False)["input_ids"])
        mask = [0] * len(ids)
        for start, end in spans:
            lo = len(tokenizer(full[:start], add_special_tokens=False)["input_ids"])
            hi = len(tokenizer(full[:end], add_special_tokens=False)["input_ids"])
            mask[lo:hi] = [1] * (hi - lo)
        return ids, mask
    mask = [int(any(s <= a < e for s, e in spans)) for a, _ in offsets]
    return ids, mask


def sft_dataset(
    tokenizer: Any,
    records: Any,
    template: str = "auto",
    *,
    style: str = "alpaca",
    fallback: str | None = None,
    max_seq_length: int | None = None,
) -> Any:
    """The SFTTrainer training set for ``records`` (a Dataset or a list of dicts), loss on the answers only.

    With the chat template: columns ``input_ids``, ``attention_mask``, ``labels`` (-100 outside the assistant
    turns), truncated to ``max_seq_length``; a record left with no trained token by truncation is dropped and
    counted in the printed line. With a text template: ``prompt``/``completion`` (``alpaca_formatter``).
    """
    from datasets import Dataset

    fallback = fallback or default_fallback(style)
    resolved = resolve_template(tokenizer, template, fallback=fallback)
    rows = records if isinstance(records, Dataset) else [dict(r) for r in records]
    if len(rows) == 0:
        raise FormattingError("sft_dataset got no records: check the loader's report for why every row was skipped")
    if resolved != "chat":
        table = rows if isinstance(rows, Dataset) else Dataset.from_list(rows)
        fn = alpaca_formatter(tokenizer, template=resolved, split=True)
        return table.map(fn, batched=True, remove_columns=table.column_names)
    out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    truncated = dropped = lost_calls = 0
    for record in rows:
        messages = to_chat_messages(record, style)
        if not any(m["role"] == "assistant" for m in messages):
            dropped += 1
            continue
        messages, tools = inline_tools(tokenizer, messages, _tools(record))
        ids, mask = tokenize_conversation(tokenizer, messages, tools)
        if _drops_tool_calls(tokenizer, messages):
            lost_calls += 1
        if max_seq_length and len(ids) > max_seq_length:
            truncated += 1
            ids, mask = ids[:max_seq_length], mask[:max_seq_length]
        if not any(mask):
            dropped += 1
            continue
        out["input_ids"].append(ids)
        out["attention_mask"].append([1] * len(ids))
        out["labels"].append([t if m else -100 for t, m in zip(ids, mask, strict=True)])
    if truncated or dropped:
        print(
            f"[sft_dataset] {len(rows)} records: {len(out['input_ids'])} kept, {truncated} truncated to "
            f"max_seq_length={max_seq_length}, {dropped} dropped (no assistant token left to train)"
        )
    if lost_calls:
        print(
            f"[sft_dataset] warning: the chat template does not render tool calls, so {lost_calls} conversations "
            "train empty tool-call turns: use a model whose chat template supports tools, or drop those records"
        )
    if not out["input_ids"]:
        raise FormattingError(
            f"every record lost its assistant turns (max_seq_length={max_seq_length}): raise max_seq_length"
        )
    return Dataset.from_dict(out)


# --- Prompts for generation -------------------------------------------------------------------------------------


def generation_prompt(
    tokenizer: Any, record: Mapping[str, Any], template: str = "auto", *, style: str = "alpaca",
    fallback: str | None = None,
) -> str:
    """The prompt the model answers at evaluation: everything before the final answer, in the training format.

    Chat: the messages without the final assistant turn, rendered with ``add_generation_prompt=True``.
    Text: :func:`kit.formatting.prompts.render_prompt` with the resolved template.
    """
    resolved = resolve_template(tokenizer, template, fallback=fallback or default_fallback(style))
    if resolved != "chat":
        return render_prompt(record, resolved)
    messages = to_chat_messages(record, style)
    if messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    messages, tools = inline_tools(tokenizer, messages, _tools(record))
    return _render(tokenizer, messages, tools, generation=True)


def reference_answer(record: Mapping[str, Any]) -> str:
    """The expected answer of a record: ``output``, or the content of a conversation's final assistant turn."""
    if record.get("messages") is not None:
        messages = list(record["messages"])
        if messages and messages[-1].get("role") == "assistant":
            return str(messages[-1].get("content") or "")
        return ""
    return _text(record, "output")


def generation_prompts(
    tokenizer: Any, records: Iterable[Mapping[str, Any]], template: str = "auto", *, style: str = "alpaca",
    fallback: str | None = None,
) -> list[str]:
    """:func:`generation_prompt` for each record."""
    return [generation_prompt(tokenizer, r, template, style=style, fallback=fallback) for r in records]


# --- DPO pairs ----------------------------------------------------------------------------------------------------


def _as_messages(value: Any, role: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, Mapping):
        return [_clean_message({"role": role, **value}, 0)]
    if isinstance(value, (list, tuple)):
        return [_clean_message(m, i) for i, m in enumerate(value)]
    raise FormattingError(f"a preference field must be a string or chat messages, got {type(value).__name__}")


def to_conversational_pair(record: Mapping[str, Any]) -> dict[str, Any]:
    """A preference pair in TRL's conversational shape: ``prompt`` as messages (a string becomes one user turn),
    ``chosen``/``rejected`` as one assistant message each (messages already in that shape are kept)."""
    return {
        "prompt": _as_messages(record["prompt"], "user"),
        "chosen": _as_messages(record["chosen"], "assistant"),
        "rejected": _as_messages(record["rejected"], "assistant"),
    }


def _message_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "\n\n".join(str(m.get("content") or "") for m in _as_messages(value, "user"))


def dpo_dataset(tokenizer: Any, pairs: Any, template: str = "auto", *, fallback: str = "alpaca_en") -> Any:
    """The DPOTrainer training set: conversational pairs with the chat template, else plain strings whose prompt
    is rendered through the text template (DPOTrainer appends EOS to plain ``chosen``/``rejected`` itself)."""
    from datasets import Dataset

    resolved = resolve_template(tokenizer, template, fallback=fallback)
    rows = [dict(r) for r in pairs]
    if not rows:
        raise FormattingError("dpo_dataset got no pairs: check the loader's report for why every row was skipped")
    if resolved == "chat":
        return Dataset.from_list([to_conversational_pair(r) for r in rows])
    return Dataset.from_list(
        [
            {
                "prompt": render_prompt({"instruction": _message_text(r["prompt"])}, resolved),
                "chosen": _message_text(r["chosen"]),
                "rejected": _message_text(r["rejected"]),
            }
            for r in rows
        ]
    )


# --- EOS consistency ------------------------------------------------------------------------------------------


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value if v is not None]


def model_eos_ids(model: Any) -> list[int]:
    """The ids generation stops at: ``generation_config.eos_token_id``, else ``config.eos_token_id`` (int or list)."""
    for holder in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        ids = _ids(getattr(holder, "eos_token_id", None))
        if ids:
            return ids
    return []


def check_eos(tokenizer: Any, model: Any = None, *, chat: bool = True) -> list[str]:
    """Raise :class:`FormattingError` (with a one-line fix) when EOS is inconsistent; return the warnings.

    Checks the tokenizer's ``eos_token`` against the model's EOS ids (generation_config, then config) when a
    model is given, and, for chat-formatted data (``chat``), the chat template's end-of-turn token: a
    chat-trained model ends its turns with that token, so generation must stop at it (it must be the
    tokenizer's EOS or one of the model's EOS ids). Catches e.g. a GGUF-built SmolLM2 tokenizer whose eos_token
    is ``<|im_start|>`` while the model's EOS is id 2 (``<|im_end|>``).
    """
    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise FormattingError(
            "the tokenizer has no eos_token: set tokenizer.eos_token (the chat template's end-of-turn token, e.g. "
            "'<|im_end|>'), or generation never stops"
        )
    eos_id = tokenizer.convert_tokens_to_ids(eos)
    stop_ids = model_eos_ids(model) if model is not None else []
    eot = end_of_turn_token(tokenizer)
    warnings: list[str] = []

    def name(i: int) -> str:
        return str(tokenizer.convert_ids_to_tokens(int(i)))

    if stop_ids and eos_id not in stop_ids:
        want = eot if eot is not None and tokenizer.convert_tokens_to_ids(eot) in stop_ids else name(stop_ids[0])
        raise FormattingError(
            f"EOS mismatch: tokenizer.eos_token is {eos!r} (id {eos_id}) but the model stops at id(s) {stop_ids} "
            f"({', '.join(repr(name(i)) for i in stop_ids)}): set tokenizer.eos_token = {want!r} before formatting"
        )
    if eot is not None and eot != eos and eos in _turn_opener(tokenizer):
        raise FormattingError(
            f"EOS mismatch: tokenizer.eos_token is {eos!r}, which the chat template uses to open a turn, while turns "
            f"end with {eot!r}: set tokenizer.eos_token = {eot!r} before formatting"
        )
    if chat and eot is not None and eot != eos:
        eot_id = tokenizer.convert_tokens_to_ids(eot)
        if eot_id not in stop_ids:
            hint = "" if model is not None else " (or pass model= if the model's EOS ids include it)"
            raise FormattingError(
                f"EOS mismatch: the chat template ends each turn with {eot!r} but tokenizer.eos_token is {eos!r}, "
                f"so a chat-trained model would not stop: set tokenizer.eos_token = {eot!r} before formatting{hint}"
            )
    if getattr(tokenizer, "pad_token", None) is None:
        warnings.append(
            "the tokenizer has no pad_token (trainers then pad with EOS): set tokenizer.pad_token to a token that is "
            "not EOS, e.g. '<|endoftext|>'"
        )
    return warnings


def trained_spans(labels: Sequence[int]) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of trained labels (not -100)."""
    spans, start = [], None
    for i, label in enumerate([*labels, -100]):
        if label != -100 and start is None:
            start = i
        elif label == -100 and start is not None:
            spans.append((start, i))
            start = None
    return spans
