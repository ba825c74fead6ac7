"""Prompt templates, the Dataset.map formatters, chat messages and the pre-training formatting check."""

from __future__ import annotations

import copy
import warnings

import pytest
from data_fixtures import tiny_tokenizer

from kit.errors import KitError
from kit.formatting import prompts
from kit.formatting.checks import check_formatting
from kit.formatting.prompts import (
    ALPACA_EN,
    MEDICAL_INSTRUCTION,
    TEMPLATES,
    FormattingError,
    alpaca_formatter,
    chat_formatter,
    get_template,
    render_prompt,
    to_messages,
)

RECORDS = [
    {"instruction": "Say hi", "input": "", "output": "Hi"},
    {"instruction": "Translate to English", "input": "你好", "output": "Hello"},
]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def _dataset(rows):
    from datasets import Dataset

    return Dataset.from_list(rows)


def test_reasoning_prompts_unchanged() -> None:
    assert prompts.REASONING_SYSTEM_PROMPT is prompts.REASONING_SYSTEM_PROMPT_ZH
    assert "最终答案：N" in prompts.REASONING_SYSTEM_PROMPT_ZH
    assert prompts.REASONING_SYSTEM_PROMPT_XML.startswith("Respond in the following format:\n<reasoning>")
    assert "'#### N'" in prompts.REASONING_SYSTEM_PROMPT_HASH


def test_templates_and_rendering() -> None:
    assert set(TEMPLATES) == {"alpaca_en", "alpaca_zh", "medical_zh"}
    for name, text in TEMPLATES.items():
        assert text.endswith("{output}") and "{instruction}" in text and "{input}" in text, name
        assert "{input}" not in get_template(name, has_input=False)
    assert ALPACA_EN.startswith("Below is an instruction that describes a task")
    with_input = render_prompt(RECORDS[1])
    assert with_input.endswith("### Input:\n你好\n\n### Response:\n")
    without = render_prompt(RECORDS[0])
    assert "### Input:" not in without and without.endswith("### Instruction:\nSay hi\n\n### Response:\n")
    assert render_prompt({"instruction": "x", "input": "  "}) == without.replace(
        "Say hi", "x"
    )  # blank = no input
    medical = render_prompt({"instruction": MEDICAL_INSTRUCTION, "input": "头痛怎么办？"}, "medical_zh")
    assert (
        "专业的医疗助手" in medical
        and "### 问题：\n头痛怎么办？" in medical
        and medical.endswith("### 回答：\n")
    )
    assert render_prompt(RECORDS[1], "alpaca_zh").endswith("### 输入：\n你好\n\n### 回答：\n")
    # Values with braces are data, not template fields.
    assert "{{name}}" in render_prompt({"instruction": "Greet {{name}}"})
    assert (
        render_prompt({"instruction": "A", "input": "B"}, "Q: {instruction} {input}\nA: {output}")
        == "Q: A B\nA: "
    )
    with pytest.raises(KitError, match="unknown template"):
        render_prompt(RECORDS[0], "nope")
    with pytest.raises(KitError, match="double any literal braces"):
        render_prompt(RECORDS[0], "{instruction} {other} {output}")


def test_alpaca_formatter_text_and_prompt_completion(tokenizer) -> None:
    dataset = _dataset(RECORDS)
    text = dataset.map(alpaca_formatter(tokenizer), batched=True, remove_columns=dataset.column_names)
    assert text.column_names == ["text"]
    assert text[0]["text"] == render_prompt(RECORDS[0]) + "Hi<|im_end|>"
    split = dataset.map(
        alpaca_formatter(tokenizer, "alpaca_zh", split=True),
        batched=True,
        remove_columns=dataset.column_names,
    )
    assert split.column_names == ["prompt", "completion"]
    assert split[1]["prompt"] == render_prompt(RECORDS[1], "alpaca_zh")
    assert split[1]["completion"] == "Hello<|im_end|>"
    # An output that already ends in EOS does not get a second one.
    again = alpaca_formatter(tokenizer)({"instruction": ["a"], "output": ["b<|im_end|>"]})
    assert again["text"][0].endswith("b<|im_end|>") and not again["text"][0].endswith("<|im_end|><|im_end|>")
    with pytest.raises(FormattingError, match="needs 'instruction' and 'output'"):
        alpaca_formatter(tokenizer)({"question": ["q"]})
    no_eos = copy.deepcopy(tokenizer)
    no_eos.eos_token = None
    with pytest.raises(FormattingError, match="no eos_token"):
        alpaca_formatter(no_eos)


def test_to_messages_and_chat_formatter(tokenizer) -> None:
    assert to_messages(RECORDS[1], "Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Translate to English\n\n你好"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert to_messages({"instruction": "Q?"}) == [{"role": "user", "content": "Q?"}]
    chats = _dataset([{"messages": to_messages(r)} for r in RECORDS])
    out = chats.map(chat_formatter(tokenizer), batched=True, remove_columns=["messages"])
    assert out[0]["text"] == "<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\nHi<|im_end|>\n"
    from_alpaca = chat_formatter(tokenizer, template_system="S")(
        {k: [r[k] for r in RECORDS] for k in RECORDS[0]}
    )
    assert from_alpaca["text"][0].startswith("<|im_start|>system\nS<|im_end|>")
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    with pytest.raises(FormattingError, match="no chat template"):
        chat_formatter(bare)


def test_check_passes_on_text_prompt_completion_and_messages(tokenizer) -> None:
    dataset = _dataset(RECORDS)
    text = dataset.map(alpaca_formatter(tokenizer), batched=True, remove_columns=dataset.column_names)
    report = check_formatting(tokenizer, text, max_seq_length=2048)
    assert (report.mode, report.completion_only, report.eos_ok, report.label_share) == (
        "text",
        False,
        True,
        1.0,
    )
    assert report.n_over_length == 0 and report.n_examples == 2
    assert "example 0" in str(report) and "### Response:" in str(report)

    split = dataset.map(
        alpaca_formatter(tokenizer, split=True), batched=True, remove_columns=dataset.column_names
    )
    report = check_formatting(tokenizer, split)
    assert report.mode == "prompt-completion" and report.completion_only
    assert 0.02 < report.label_share < 1.0
    assert report.n_label_tokens == len(tokenizer("Hi<|im_end|>")["input_ids"])

    chats = _dataset([{"messages": to_messages(r, "S")} for r in RECORDS])
    report = check_formatting(tokenizer, chats)
    assert report.mode == "messages" and 0.02 < report.label_share < 1.0 and report.eos_ok

    rendered = chats.map(chat_formatter(tokenizer), batched=True, remove_columns=["messages"])
    report = check_formatting(tokenizer, rendered, response_template="<|im_start|>assistant\n")
    assert report.completion_only and 0.02 < report.label_share < 1.0


def test_check_missing_eos_says_how_to_fix(tokenizer) -> None:
    rows = [{"text": render_prompt(RECORDS[0]) + "Hi"}]
    with pytest.raises(FormattingError) as info:
        check_formatting(tokenizer, rows)
    assert str(info.value).startswith(
        "no EOS at the end of example 0: append tokenizer.eos_token ('<|im_end|>') in the formatting function, "
        "or generation never stops"
    )
    pc = [{"prompt": "Q: ", "completion": "A"}]
    with pytest.raises(FormattingError, match="no EOS at the end of example 0's completion"):
        check_formatting(tokenizer, pc)


def test_check_catches_masking_mistakes(tokenizer) -> None:
    # Everything a label although the loss should be on the response only.
    with pytest.raises(FormattingError, match="every token of example 0 is a label"):
        check_formatting(tokenizer, [{"prompt": "", "completion": "Hi<|im_end|>"}])
    # Truncation leaves only prompt tokens in the window: every label -100.
    long_prompt = [{"prompt": render_prompt(RECORDS[0]) * 5, "completion": "Hi<|im_end|>"}]
    with pytest.raises(FormattingError, match="prompt fills the window"):
        check_formatting(tokenizer, long_prompt, max_seq_length=32)
    # A chat template without {% generation %} markers marks no assistant tokens.
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = "{% for m in messages %}{{ m['content'] + '<|im_end|>' }}{% endfor %}"
    with pytest.raises(FormattingError, match="marks no assistant tokens"):
        check_formatting(plain, [{"messages": to_messages(RECORDS[0])}])
    with pytest.raises(FormattingError, match="does not occur in example 0"):
        check_formatting(tokenizer, [{"text": "x<|im_end|>"}], response_template="### Response:\n")
    with pytest.raises(FormattingError, match="no 'text', 'prompt'/'completion' or 'messages' column"):
        check_formatting(tokenizer, [{"instruction": "a", "output": "b"}])
    with pytest.raises(FormattingError, match="empty"):
        check_formatting(tokenizer, [])
    # FormattingError is a KitError, so the CLI and notebooks treat it as a user mistake.
    assert issubclass(FormattingError, KitError)


def test_check_counts_examples_over_length(tokenizer) -> None:
    rows = [
        {"text": "short<|im_end|>"},
        {"text": "long " * 200 + "<|im_end|>"},
        {"text": "long " * 300 + "<|im_end|>"},
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = check_formatting(tokenizer, rows, max_seq_length=64)
    assert report.n_over_length == 2
    assert any("2 of 3 examples are longer than max_seq_length=64" in str(w.message) for w in caught)
    assert "longer than max_seq_length=64: 2 of 3" in str(report)
