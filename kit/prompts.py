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

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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


# --- The formatting check ------------------------------------------------------------------------------------


@dataclass
class FormattingReport:
    """What :func:`check_formatting` saw in the first example, and how many examples exceed the window."""

    mode: str
    completion_only: bool
    example_text: str
    n_tokens: int
    n_label_tokens: int
    label_share: float
    eos_ok: bool
    n_examples: int
    max_seq_length: int | None = None
    n_over_length: int | None = None
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        loss = "completion only" if self.completion_only else "every token"
        shown = self.example_text if len(self.example_text) <= 1500 else self.example_text[:1500] + " […]"
        lines = [
            f"Formatting check ({self.mode}, loss on {loss}): OK",
            f"  example 0: {self.n_tokens} tokens, {self.n_label_tokens} trained ({self.label_share:.1%}), "
            f"EOS at the end: {'yes' if self.eos_ok else 'NO'}",
            "  ---- example 0 ----",
            *("  " + line for line in shown.splitlines()),
            "  -------------------",
        ]
        if self.max_seq_length is not None:
            lines.append(
                f"  longer than max_seq_length={self.max_seq_length}: {self.n_over_length} of {self.n_examples} examples"
            )
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _rows(dataset: Any) -> tuple[list[str], int, Callable[[str], list[Any]], Mapping[str, Any]]:
    if hasattr(dataset, "column_names"):
        cols = list(dataset.column_names)
        return cols, len(dataset), lambda name: list(dataset[name]), dataset[0] if len(dataset) else {}
    rows = list(dataset)
    cols = list(rows[0]) if rows else []
    return cols, len(rows), lambda name: [r.get(name) for r in rows], rows[0] if rows else {}


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _ends_with_eos(tokenizer: Any, ids: Sequence[int], eos_id: int) -> bool:
    """True if the last token that is not pure whitespace is the EOS id."""
    ids = list(ids)
    while ids and ids[-1] != eos_id and not tokenizer.decode([ids[-1]]).strip():
        ids.pop()
    return bool(ids) and ids[-1] == eos_id


def _last_label_is_eos(tokenizer: Any, labels: Sequence[int], eos_id: int) -> bool:
    """True if the last trained label that is not pure whitespace (a template's trailing newline) is EOS."""
    return _ends_with_eos(tokenizer, [t for t in labels if t != -100], eos_id)


def check_formatting(
    tokenizer: Any,
    dataset: Any,
    *,
    text_field: str = "text",
    completion_only: bool | None = None,
    max_seq_length: int | None = None,
    min_label_share: float = 0.02,
    response_template: str | None = None,
    model: Any = None,
) -> FormattingReport:
    """Check formatted training data before training; raise :class:`FormattingError` saying what and how to fix.

    Looks at example 0 the way TRL's SFTTrainer will: ``prompt``/``completion`` columns (loss on the
    completion), a ``messages`` column (loss on assistant turns via the chat template's generation mask) or
    a text column (loss on every token; on the part after the last ``response_template`` when that is given).
    Checks that the text ends with the EOS token (as text and as the last token id), and for completion-only
    loss that the share of trained labels (not -100) after truncation to ``max_seq_length`` is above
    ``min_label_share`` and below 1.0. Counts (and warns about) examples longer than ``max_seq_length``.

    A pre-tokenized dataset (``input_ids`` with ``labels``, ``assistant_masks`` or ``completion_mask``, as
    :func:`kit.chat_format.sft_dataset` builds) is checked span by span: every trained span must end with EOS
    or the chat template's end-of-turn token. First of all the EOS itself is checked
    (:func:`kit.chat_format.check_eos`): against ``model``'s EOS ids when a model is given, and against the
    chat template's end-of-turn token.
    """
    from kit.chat_format import check_eos

    cols, n_examples, column, first = _rows(dataset)
    if n_examples == 0:
        raise FormattingError("the dataset is empty: check the loader's report for why every row was skipped")
    chat = "input_ids" in cols or "messages" in cols or ("prompt" in cols and not isinstance(first["prompt"], str))
    eos_warnings = check_eos(tokenizer, model, chat=chat)
    eos = _eos(tokenizer)
    eos_id = tokenizer.convert_tokens_to_ids(eos)
    if "input_ids" in cols:
        report = _check_tokenized(tokenizer, cols, n_examples, column, eos_id, max_seq_length, min_label_share)
        report.warnings[:0] = eos_warnings
        for message in report.warnings:
            warnings.warn(message, stacklevel=2)
        return report

    prompt = completion = messages = None
    if "prompt" in cols and "completion" in cols:
        prompt, completion = first["prompt"], first["completion"]
        mode = "prompt-completion"
        if not isinstance(prompt, str):  # conversational prompt-completion: a list of messages each
            messages, prompt, completion = list(prompt) + list(completion), None, None
    elif "messages" in cols:
        mode, messages = "messages", list(first["messages"])
    elif text_field in cols:
        mode, text = "text", first[text_field]
        if response_template is not None:
            cut = text.rfind(response_template)  # the last response heading, as TRL's old collator did
            if cut < 0:
                raise FormattingError(
                    f"response_template {response_template!r} does not occur in example 0, so every label would be "
                    "-100: pass the exact response heading of your template (e.g. '### Response:\\n')"
                )
            prompt, completion = text[: cut + len(response_template)], text[cut + len(response_template) :]
    else:
        raise FormattingError(
            f"no '{text_field}', 'prompt'/'completion' or 'messages' column (found {cols}): map the dataset with "
            "kit.prompts.alpaca_formatter(tokenizer) or chat_formatter(tokenizer) first"
        )
    if completion_only is None:
        completion_only = mode != "text" or response_template is not None

    if messages is not None:
        if not getattr(tokenizer, "chat_template", None):
            raise FormattingError(
                "the data is chat messages but the tokenizer has no chat template: set one first"
            )
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        out = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=completion_only
        )
        ids = list(out["input_ids"])
        mask = list(out.get("assistant_masks") or []) if completion_only else [1] * len(ids)
        if completion_only and not any(mask):
            raise FormattingError(
                "the chat template marks no assistant tokens in example 0, so every label would be -100: use a "
                "chat template with {% generation %} markers, or train on text with a response_template"
            )
        labels = [t if m else -100 for t, m in zip(ids, mask, strict=False)]
        eos_ok = (
            _last_label_is_eos(tokenizer, labels, eos_id)
            if completion_only
            else _ends_with_eos(tokenizer, ids, eos_id)
        )
        where = "the last assistant turn"
    elif prompt is not None:
        text = prompt + completion
        if not completion.rstrip().endswith(eos):
            raise FormattingError(
                f"no EOS at the end of example 0's completion: append tokenizer.eos_token ({eos!r}) in the "
                f"formatting function, or generation never stops (the completion ends with {completion[-40:]!r})"
            )
        prompt_ids = tokenizer(text=prompt)["input_ids"]
        ids = list(tokenizer(text=text)["input_ids"])
        start = _common_prefix(prompt_ids, ids) if completion_only else 0
        labels = [-100] * start + ids[start:]
        eos_ok = _last_label_is_eos(tokenizer, labels, eos_id)
        where = "the completion"
    else:
        if not text.rstrip().endswith(eos):
            raise FormattingError(
                f"no EOS at the end of example 0: append tokenizer.eos_token ({eos!r}) in the formatting "
                f"function, or generation never stops (the example ends with {text[-40:]!r})"
            )
        ids = list(tokenizer(text=text)["input_ids"])
        labels = list(ids)
        eos_ok = _ends_with_eos(tokenizer, ids, eos_id)
        where = "the text"
    if not eos_ok:
        raise FormattingError(
            f"no EOS token (id {eos_id}, {eos!r}) at the end of {where} in example 0 after tokenization: the "
            "formatting must end every example with tokenizer.eos_token (and the chat template's end-of-turn "
            "token must be the tokenizer's eos_token), or generation never stops"
        )

    window = labels[:max_seq_length] if max_seq_length else labels
    trained = sum(1 for t in window if t != -100)
    share = trained / len(window) if window else 0.0
    if completion_only:
        if share >= 1.0:
            raise FormattingError(
                "every token of example 0 is a label, so the loss is not on the response only: use prompt/"
                "completion columns (alpaca_formatter(..., split=True)) or a chat template with {% generation %}"
            )
        if share <= min_label_share:
            cause = (
                f"after truncation to max_seq_length={max_seq_length} the prompt fills the window; raise "
                "max_seq_length or shorten the prompt"
                if max_seq_length and len(labels) > max_seq_length
                else "check that the completion/assistant part is not empty and the masking is right"
            )
            raise FormattingError(
                f"only {trained} of {len(window)} tokens of example 0 are labels ({share:.1%} <= {min_label_share:.0%}), "
                f"so almost every label is -100: {cause}"
            )

    report = FormattingReport(
        mode=mode,
        completion_only=bool(completion_only),
        example_text=text,
        n_tokens=len(ids),
        n_label_tokens=trained,
        label_share=round(share, 4),
        eos_ok=eos_ok,
        n_examples=n_examples,
        max_seq_length=max_seq_length,
    )
    if max_seq_length:
        report.n_over_length = _count_over_length(
            tokenizer, mode, column, text_field, max_seq_length, messages is not None
        )
        if report.n_over_length:
            msg = (
                f"{report.n_over_length} of {n_examples} examples are longer than max_seq_length={max_seq_length} "
                "tokens and will be truncated (their ends, EOS included, are not trained): raise max_seq_length or "
                "filter them out"
            )
            report.warnings.append(msg)
            warnings.warn(msg, stacklevel=2)
    for message in eos_warnings:
        report.warnings.append(message)
        warnings.warn(message, stacklevel=2)
    return report


def _labels_of(example_ids: Sequence[int], row: Mapping[str, Any]) -> list[int]:
    if row.get("labels") is not None:
        return list(row["labels"])
    masks = [row[k] for k in ("assistant_masks", "completion_mask") if row.get(k) is not None]
    return [t if all(m) else -100 for t, *m in zip(example_ids, *masks, strict=False)]


def _check_tokenized(
    tokenizer: Any,
    cols: list[str],
    n_examples: int,
    column: Callable[[str], list[Any]],
    eos_id: int,
    max_seq_length: int | None,
    min_label_share: float,
) -> FormattingReport:
    """check_formatting for pre-tokenized rows: each trained span ends with EOS/end-of-turn; label share."""
    from kit.chat_format import end_of_turn_token, trained_spans

    eot = end_of_turn_token(tokenizer)
    stops = {eos_id} | ({tokenizer.convert_tokens_to_ids(eot)} if eot else set())
    names = " or ".join(repr(t) for t in dict.fromkeys([tokenizer.eos_token, eot]) if t)
    mask_cols = [c for c in ("labels", "assistant_masks", "completion_mask") if c in cols]
    if not mask_cols:
        raise FormattingError(
            "the dataset is tokenized (input_ids) but has no labels, assistant_masks or completion_mask, so the loss "
            "would be on every token: build it with kit.chat_format.sft_dataset(tokenizer, records)"
        )
    all_ids = column("input_ids")
    extra = {c: column(c) for c in mask_cols}
    ids = list(all_ids[0])
    first_labels = _labels_of(ids, {c: extra[c][0] for c in mask_cols})
    window = first_labels[:max_seq_length] if max_seq_length else first_labels
    trained = sum(1 for t in window if t != -100)
    share = trained / len(window) if window else 0.0
    if share >= 1.0:
        raise FormattingError(
            "every token of example 0 is a label, so the loss is not on the answers only: build the data with "
            "kit.chat_format.sft_dataset(tokenizer, records)"
        )
    if share <= min_label_share:
        raise FormattingError(
            f"only {trained} of {len(window)} tokens of example 0 are labels ({share:.1%} <= {min_label_share:.0%}): "
            "the prompt fills the window; raise max_seq_length or shorten the prompt"
        )
    cut_spans = over = 0
    for index, example_ids in enumerate(all_ids):
        labels = _labels_of(example_ids, {c: extra[c][index] for c in mask_cols})
        if max_seq_length and len(example_ids) > max_seq_length:
            over += 1
        spans = trained_spans(labels)
        if not spans:
            raise FormattingError(
                f"example {index} has no trained token (every label is -100): check that its assistant turn is not "
                "empty and that max_seq_length leaves room for it"
            )
        for start, end in spans:
            if labels[end - 1] in stops:
                continue
            if end == len(example_ids) and max_seq_length and len(example_ids) >= max_seq_length:
                cut_spans += 1  # cut by truncation: the model sees no end here, counted below
                continue
            raise FormattingError(
                f"example {index}: the trained span at tokens {start}..{end} ends with "
                f"{tokenizer.decode([labels[end - 1]])!r}, not EOS ({names}): every assistant turn must end with the "
                "end-of-turn token (build the data with kit.chat_format.sft_dataset, or fix tokenizer.eos_token)"
            )
    report = FormattingReport(
        mode="tokenized",
        completion_only=True,
        example_text=tokenizer.decode(ids),
        n_tokens=len(ids),
        n_label_tokens=trained,
        label_share=round(share, 4),
        eos_ok=True,
        n_examples=n_examples,
        max_seq_length=max_seq_length,
        n_over_length=over if max_seq_length else None,
    )
    if cut_spans:
        report.warnings.append(
            f"{cut_spans} trained spans were cut by max_seq_length={max_seq_length} and end without EOS: raise "
            "max_seq_length or filter the longest records out"
        )
    return report


def _count_over_length(
    tokenizer: Any, mode: str, column: Callable[[str], list[Any]], text_field: str, limit: int, chat: bool
) -> int:
    if chat:
        if mode == "messages":
            convs = column("messages")
        else:
            convs = [list(p) + list(c) for p, c in zip(column("prompt"), column("completion"), strict=True)]
        texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in convs]
    elif mode == "prompt-completion":
        texts = [p + c for p, c in zip(column("prompt"), column("completion"), strict=True)]
    else:
        texts = column(text_field)
    over = 0
    for start in range(0, len(texts), 1000):
        over += sum(len(x) > limit for x in tokenizer(texts[start : start + 1000])["input_ids"])
    return over
