"""Prompt templates, formatting functions for ``Dataset.map``, and a pre-training formatting check.

The reasoning system prompts live here so that ``kit.data`` (building GRPO prompts) and ``kit.rewards``
(judging the matching answer format) share one definition.

Templates are ``str.format`` strings with the fields ``{instruction}``, ``{input}`` and ``{output}``, and
``{output}`` always last: the prompt is everything before it, so training text and the generation prompt
used at eval time can never drift apart. Each named template has a no-input twin (as Alpaca does): a
record whose ``input`` is empty or whitespace is rendered without the input section instead of with an
empty one. A custom template string may be passed wherever a name is accepted; it is used for both cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kit.errors import KitError

# fmt: off
# The default XML format: reasoning, then the answer, each in its own tag.
REASONING_SYSTEM_PROMPT_XML = (
    "Respond in the following format:\n"
    "<reasoning>\n...\n</reasoning>\n"
    "<answer>\n...\n</answer>"
)
# The Chinese format from our users' tutorials: step-by-step work in <reasoning>, then a line 最终答案：N.
REASONING_SYSTEM_PROMPT_ZH = (
    "请一步一步地思考，并把推理过程写在 <reasoning> 和 </reasoning> 之间。\n"
    "推理结束后，另起一行写出“最终答案：N”，其中 N 只包含数字。"
)
# The GSM8K format: worked solution, final line "#### N".
REASONING_SYSTEM_PROMPT_HASH = (
    "Solve the problem step by step. On the last line write the final answer as '#### N', "
    "where N is a number only."
)
REASONING_SYSTEM_PROMPT = REASONING_SYSTEM_PROMPT_ZH
# fmt: on

# --- Instruction templates -------------------------------------------------------------------------------

ALPACA_EN = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n"
    "### Input:\n{input}\n\n"
    "### Response:\n{output}"
)
ALPACA_EN_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n"
    "### Response:\n{output}"
)
ALPACA_ZH = (
    "下面是一条描述任务的指令，并附有提供更多上下文的输入。请写出恰当完成该请求的回答。\n\n"
    "### 指令：\n{instruction}\n\n"
    "### 输入：\n{input}\n\n"
    "### 回答：\n{output}"
)
ALPACA_ZH_NO_INPUT = (
    "下面是一条描述任务的指令。请写出恰当完成该请求的回答。\n\n"
    "### 指令：\n{instruction}\n\n"
    "### 回答：\n{output}"
)
# The instruction every medical record carries; the patient's question is the input.
MEDICAL_INSTRUCTION = "请回答以下医疗相关问题"
MEDICAL_ZH = (
    "你是一名专业的医疗助手，请根据指令，准确、清晰地回答患者的问题。\n\n"
    "### 指令：\n{instruction}\n\n"
    "### 问题：\n{input}\n\n"
    "### 回答：\n{output}"
)
MEDICAL_ZH_NO_INPUT = (
    "你是一名专业的医疗助手，请根据指令，准确、清晰地作答。\n\n"
    "### 指令：\n{instruction}\n\n"
    "### 回答：\n{output}"
)

TEMPLATES: dict[str, str] = {"alpaca_en": ALPACA_EN, "alpaca_zh": ALPACA_ZH, "medical_zh": MEDICAL_ZH}
TEMPLATES_NO_INPUT: dict[str, str] = {
    "alpaca_en": ALPACA_EN_NO_INPUT,
    "alpaca_zh": ALPACA_ZH_NO_INPUT,
    "medical_zh": MEDICAL_ZH_NO_INPUT,
}
_OUTPUT = "{output}"


class FormattingError(KitError):
    """Training data formatted so that training would silently go wrong (no EOS, every label masked, ...)."""


def get_template(template: str = "alpaca_en", *, has_input: bool = True) -> str:
    """The template text for a name in :data:`TEMPLATES` (its no-input twin when ``has_input`` is False).

    Any other string containing ``{instruction}`` and ending in ``{output}`` is taken as a custom template.
    """
    if template in TEMPLATES:
        return TEMPLATES[template] if has_input else TEMPLATES_NO_INPUT[template]
    if "{instruction}" in template and template.endswith(_OUTPUT):
        return template
    raise KitError(
        f"unknown template {template[:60]!r}: use one of {sorted(TEMPLATES)}, or a format string with "
        "{instruction} (and optionally {input}) that ends with {output}"
    )


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    return "" if value is None else str(value)


def render_prompt(record: Mapping[str, Any], template: str = "alpaca_en") -> str:
    """The prompt for ``record`` up to and including the response heading (no output): for generation."""
    source = _text(record, "input")
    text = get_template(template, has_input=bool(source.strip()))
    try:
        return text[: -len(_OUTPUT)].format(instruction=_text(record, "instruction"), input=source)
    except (KeyError, IndexError, ValueError) as exc:
        raise KitError(
            f"template {template[:60]!r} has a field other than {{instruction}}/{{input}}/{{output}} ({exc!r}); "
            "double any literal braces ({{ }})"
        ) from None


def render_example(record: Mapping[str, Any], template: str = "alpaca_en") -> str:
    """Prompt plus output, without EOS (the formatter adds the tokenizer's EOS)."""
    return render_prompt(record, template) + _text(record, "output")


def _eos(tokenizer: Any) -> str:
    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise FormattingError(
            "the tokenizer has no eos_token: set tokenizer.eos_token (e.g. '<|im_end|>' for Qwen chat models), "
            "or generation never stops"
        )
    return eos


def _column(batch: Mapping[str, Any], name: str, n: int) -> list[Any]:
    values = batch[name] if name in batch else None
    return [None] * n if values is None else list(values)


def alpaca_formatter(
    tokenizer: Any, template: str = "alpaca_en", *, split: bool = False
) -> Callable[[dict[str, list]], dict[str, list]]:
    """A batched ``Dataset.map`` function for instruction/input/output records.

    ``split=False`` gives ``{"text": prompt + output + EOS}``; ``split=True`` gives TRL's prompt-completion
    columns ``{"prompt", "completion": output + EOS}``, which SFTTrainer trains on the completion only.
    Use ``dataset.map(fn, batched=True, remove_columns=dataset.column_names)``.
    """
    eos = _eos(tokenizer)
    get_template(template)  # fail now, not inside map

    def format_batch(batch: dict[str, list]) -> dict[str, list]:
        if "instruction" not in batch or "output" not in batch:
            raise FormattingError(
                f"alpaca_formatter needs 'instruction' and 'output' columns, found {sorted(batch)}; "
                "load the data with kit.data.load_alpaca / load_medical, or rename the columns"
            )
        n = len(batch["instruction"])
        inputs = _column(batch, "input", n)
        prompts = [
            render_prompt({"instruction": ins, "input": inp}, template)
            for ins, inp in zip(batch["instruction"], inputs, strict=True)
        ]
        completions = [
            o if (o := "" if out is None else str(out)).endswith(eos) else o + eos for out in batch["output"]
        ]
        if split:
            return {"prompt": prompts, "completion": completions}
        return {"text": [p + c for p, c in zip(prompts, completions, strict=True)]}

    return format_batch


def to_messages(record: Mapping[str, Any], template_system: str | None = None) -> list[dict[str, str]]:
    """Chat messages for an instruction/input/output record: optional system, user (instruction + input), assistant.

    A record's own ``system`` wins over ``template_system``; its ``history`` (``[instruction, response]`` pairs)
    becomes the earlier user/assistant turns. The assistant turn is left out when the record has no output
    (a prompt for generation).
    """
    system = _text(record, "system").strip() or template_system
    messages = [{"role": "system", "content": system}] if system else []
    for pair in record.get("history") or []:
        messages += [{"role": "user", "content": str(pair[0])}, {"role": "assistant", "content": str(pair[1])}]
    user = _text(record, "instruction").strip()
    source = _text(record, "input").strip()
    if source:
        user = f"{user}\n\n{source}" if user else source
    messages.append({"role": "user", "content": user})
    output = _text(record, "output")
    if output:
        messages.append({"role": "assistant", "content": output})
    return messages


def chat_formatter(
    tokenizer: Any, messages_field: str = "messages", *, template_system: str | None = None
) -> Callable[[dict[str, list]], dict[str, list]]:
    """A batched ``Dataset.map`` function rendering chat messages through ``tokenizer.apply_chat_template``.

    Records without ``messages_field`` but with instruction/output are turned into messages first
    (:func:`to_messages`). The chat template adds the end-of-turn token itself.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise FormattingError(
            "the tokenizer has no chat template: set one (e.g. unsloth.chat_templates.get_chat_template("
            "tokenizer, 'qwen-2.5')) or use alpaca_formatter for plain instruction text"
        )

    def format_batch(batch: dict[str, list]) -> dict[str, list]:
        if messages_field in batch:
            conversations = list(batch[messages_field])
        elif "instruction" in batch:
            n = len(batch["instruction"])
            cols = {k: _column(batch, k, n) for k in ("instruction", "input", "output", "system", "history")}
            conversations = [to_messages({k: cols[k][i] for k in cols}, template_system) for i in range(n)]
        else:
            raise FormattingError(
                f"chat_formatter needs a '{messages_field}' column (a list of {{role, content}}) or "
                f"instruction/output columns; found {sorted(batch)}"
            )
        return {"text": [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]}

    return format_batch
