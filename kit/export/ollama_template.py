"""Ollama ``Modelfile`` templates: write one from a tokenizer's chat template, and fill one in as Ollama would.

An export answers like the notebook only if the runtime builds the same prompt text the model was trained on.
:func:`chatml_template` turns a ChatML chat template (the tiny model, Qwen2.5, SmolLM2) into an Ollama (Go)
template plus the default system message it injects; :func:`render` fills such a template with a conversation
the way Ollama's chat endpoint does, so :func:`check_modelfile` can compare the result with
``tokenizer.apply_chat_template`` byte for byte. :func:`render` knows the Go-template subset these templates use
(fields, ``if``/``else``/``end`` on a field or on ``eq``/``ne .Role "x"``, ``range .Messages``, ``{{-``/``-}}``);
anything else is a :class:`~kit.errors.KitError`, never a silent pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.errors import KitError

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_CONDITION = re.compile(r'^(eq|ne)\s+\.(\w+)\s+"([^"]*)"$')
_PROBE_USER = "\x01kit-user\x01"


@dataclass
class _Node:
    kind: str  # text, field, if, range
    value: str = ""
    body: list[_Node] = field(default_factory=list)
    other: list[_Node] = field(default_factory=list)


def _parse(template: str) -> list[_Node]:
    """The template as a tree; whitespace around ``{{-``/``-}}`` trimmed as Go does."""
    pieces: list[tuple[str, str]] = []
    position = 0
    for match in _ACTION.finditer(template):
        text = template[position : match.start()]
        if match.group(1):
            text = text.rstrip(" \t\r\n")
        if pieces and pieces[-1][0] == "trim-next":
            pieces.pop()
            text = text.lstrip(" \t\r\n")
        pieces.append(("text", text))
        pieces.append(("action", match.group(2)))
        if match.group(3):
            pieces.append(("trim-next", ""))
        position = match.end()
    tail = template[position:]
    if pieces and pieces[-1][0] == "trim-next":
        pieces.pop()
        tail = tail.lstrip(" \t\r\n")
    pieces.append(("text", tail))

    root: list[_Node] = []
    stack: list[tuple[_Node | None, list[_Node]]] = [(None, root)]
    for kind, value in pieces:
        target = stack[-1][1]
        if kind == "text":
            if value:
                target.append(_Node("text", value))
        elif value.startswith("if "):
            node = _Node("if", value[3:].strip())
            target.append(node)
            stack.append((node, node.body))
        elif value.startswith("range "):
            node = _Node("range", value[6:].strip())
            target.append(node)
            stack.append((node, node.body))
        elif value == "else":
            owner = stack[-1][0]
            if owner is None or owner.kind != "if":
                raise KitError("Modelfile TEMPLATE: {{ else }} outside an {{ if }}")
            stack[-1] = (owner, owner.other)
        elif value == "end":
            if len(stack) == 1:
                raise KitError("Modelfile TEMPLATE: {{ end }} without an opening {{ if }} or {{ range }}")
            stack.pop()
        elif re.fullmatch(r"\.\w+", value):
            target.append(_Node("field", value[1:]))
        else:
            raise KitError(f"Modelfile TEMPLATE: {{{{ {value} }}}} is beyond what the kit can check; "
                           "use fields, if/else/end, eq/ne .Role and range .Messages")
    if len(stack) != 1:
        raise KitError("Modelfile TEMPLATE: an {{ if }} or {{ range }} has no {{ end }}")
    return root


def _truthy(condition: str, scope: Mapping[str, Any]) -> bool:
    match = _CONDITION.match(condition)
    if match:
        equal = str(scope.get(match.group(2), "")) == match.group(3)
        return equal if match.group(1) == "eq" else not equal
    if re.fullmatch(r"\.\w+", condition):
        return bool(scope.get(condition[1:]))
    raise KitError(f"Modelfile TEMPLATE: the condition {condition!r} is beyond what the kit can check")


def _execute(nodes: Sequence[_Node], scope: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    out: list[str] = []
    for node in nodes:
        if node.kind == "text":
            out.append(node.value)
        elif node.kind == "field":
            value = scope.get(node.value, root.get(node.value) if scope is not root else None)
            out.append("" if value is None else str(value))
        elif node.kind == "if":
            out.append(_execute(node.body if _truthy(node.value, scope) else node.other, scope, root))
        elif node.kind == "range":
            if node.value != ".Messages":
                raise KitError(f"Modelfile TEMPLATE: range over {node.value} is beyond what the kit can check")
            for message in root.get("Messages", []):
                out.append(_execute(node.body, message, root))
    return "".join(out)


def render(template: str, messages: Sequence[Mapping[str, str]], system: str | None = None) -> str:
    """The prompt Ollama's chat endpoint builds from ``template`` for ``messages``.

    As Ollama does: the Modelfile's ``SYSTEM`` (``system``) becomes the first message when the conversation has
    no system message; ``.System`` is the system messages' text; ``.Prompt`` the last user message's content.
    """
    msgs = [{"Role": m["role"], "Content": m["content"]} for m in messages]
    if system and not any(m["Role"] == "system" for m in msgs):
        msgs.insert(0, {"Role": "system", "Content": system})
    users = [m["Content"] for m in msgs if m["Role"] == "user"]
    root = {"Messages": msgs, "System": "\n\n".join(m["Content"] for m in msgs if m["Role"] == "system"),
            "Prompt": users[-1] if users else "", "Response": ""}
    return _execute(_parse(template), root, root)


CHATML = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)


def default_system(tokenizer: Any) -> str | None:
    """The system message a ChatML chat template adds when a conversation has none (SmolLM2 has one), or None."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": _PROBE_USER}], tokenize=False,
                                         add_generation_prompt=True)
    match = re.match(r"<\|im_start\|>system\n(.*?)<\|im_end\|>\n<\|im_start\|>user\n", text, re.DOTALL)
    return match.group(1) if match else None


def chatml_template(tokenizer: Any) -> tuple[str, str | None]:
    """``(TEMPLATE, SYSTEM)`` for a ChatML tokenizer; a KitError when the chat template is not plain ChatML."""
    system = default_system(tokenizer)
    probe = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
             {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"}]
    expected = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    if render(CHATML, probe, system) != expected:
        raise KitError("the chat template is not plain ChatML: write the Ollama TEMPLATE by hand (kit.export.save."
                       "modelfile_text(template=...)) or train with a kit text template")
    return CHATML, system


def split_chatml(prompt: str) -> list[dict[str, str]] | None:
    """The messages of a ChatML prompt that ends with the assistant cue, or None when it is not one."""
    messages = []
    position = 0
    block = re.compile(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>\n", re.DOTALL)
    while (match := block.match(prompt, position)) is not None:
        messages.append({"role": match.group(1), "content": match.group(2)})
        position = match.end()
    return messages if messages and prompt[position:] == "<|im_start|>assistant\n" else None


def parse_modelfile(text: str) -> dict[str, Any]:
    """``{"template", "system", "stops"}`` from a Modelfile (triple-quoted or one-line values)."""
    found: dict[str, Any] = {"template": None, "system": None, "stops": []}
    pattern = re.compile(r'^(TEMPLATE|SYSTEM|PARAMETER stop)\s+(?:"""(.*?)"""|"((?:[^"\\]|\\.)*)")',
                         re.MULTILINE | re.DOTALL)
    for match in pattern.finditer(text):
        value = match.group(2) if match.group(2) is not None else match.group(3).encode().decode("unicode_escape")
        if match.group(1) == "PARAMETER stop":
            found["stops"].append(value)
        else:
            found[match.group(1).lower()] = value
    return found
