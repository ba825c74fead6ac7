"""The pre-training formatting check: is every trained span closed by EOS, and is the loss where it should be?

It reads data the way TRL's SFTTrainer will, whichever shape the formatting functions of
:mod:`kit.formatting.prompts` or :func:`kit.formatting.chat_format.sft_dataset` produced, and raises
:class:`~kit.formatting.prompts.FormattingError` with what to fix.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.formatting.chat_format import check_eos, end_of_turn_token, trained_spans
from kit.formatting.prompts import FormattingError, _eos


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


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading token ids two sequences share (where a prompt's tokens end inside prompt + answer)."""
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
    :func:`kit.formatting.chat_format.sft_dataset` builds) is checked span by span: every trained span must end with EOS
    or the chat template's end-of-turn token. First of all the EOS itself is checked
    (:func:`kit.formatting.chat_format.check_eos`): against ``model``'s EOS ids when a model is given, and against the
    chat template's end-of-turn token.
    """
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
            "kit.formatting.prompts.alpaca_formatter(tokenizer) or chat_formatter(tokenizer) first"
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
        start = common_prefix(prompt_ids, ids) if completion_only else 0
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
    eot = end_of_turn_token(tokenizer)
    stops = {eos_id} | ({tokenizer.convert_tokens_to_ids(eot)} if eot else set())
    names = " or ".join(repr(t) for t in dict.fromkeys([tokenizer.eos_token, eot]) if t)
    mask_cols = [c for c in ("labels", "assistant_masks", "completion_mask") if c in cols]
    if not mask_cols:
        raise FormattingError(
            "the dataset is tokenized (input_ids) but has no labels, assistant_masks or completion_mask, so the loss "
            "would be on every token: build it with kit.formatting.chat_format.sft_dataset(tokenizer, records)"
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
            "kit.formatting.chat_format.sft_dataset(tokenizer, records)"
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
                "end-of-turn token (build the data with kit.formatting.chat_format.sft_dataset, or fix tokenizer.eos_token)"
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
