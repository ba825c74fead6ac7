"""Chat-format training data: assistant-only labels for any chat template, generation prompts, DPO pairs, EOS checks."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from kit.formatting.chat_format import (
    MEDICAL_SYSTEM,
    check_eos,
    dpo_dataset,
    end_of_turn_token,
    generation_prompt,
    reference_answer,
    resolve_template,
    sft_dataset,
    to_chat_messages,
    to_conversational_pair,
    tokenize_conversation,
    trained_spans,
)
from kit.formatting.checks import check_formatting
from kit.formatting.prompts import FormattingError

# SmolLM2-135M-Instruct's ChatML: a default system prompt and no {% generation %} markers.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CONVERSATION = [
    {"role": "user", "content": "Say hi"},
    {"role": "assistant", "content": "Hi there"},
    {"role": "user", "content": "Once more"},
    {"role": "assistant", "content": "Hello"},
]


@pytest.fixture(scope="module")
def model_dir(request) -> Path:
    """The tiny model: a prebuilt one from KIT_TINY_MODEL_DIR (faster local runs), else the session's."""
    prebuilt = os.environ.get("KIT_TINY_MODEL_DIR")
    return Path(prebuilt) if prebuilt else request.getfixturevalue("tiny_model_dir")


@pytest.fixture(scope="module")
def base_tokenizer(model_dir):
    """The tiny model's tokenizer (ChatML with {% generation %} marks, eos <|im_end|>); tests copy it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module", params=["generation-marks", "smollm2"])
def tokenizer(request, base_tokenizer):
    tok = copy.deepcopy(base_tokenizer)
    if request.param == "smollm2":
        tok.chat_template = SMOLLM2_TEMPLATE
    return tok


def _trained_text(tok, ids, mask) -> str:
    return tok.decode([t for t, m in zip(ids, mask, strict=True) if m])


def test_resolve_template(base_tokenizer) -> None:
    tok = copy.deepcopy(base_tokenizer)
    assert resolve_template(tok) == "chat" and resolve_template(tok, "chat") == "chat"
    assert resolve_template(tok, "alpaca_zh") == "alpaca_zh"
    tok.chat_template = None
    assert resolve_template(tok) == "alpaca_en"
    assert resolve_template(tok, fallback="medical_zh") == "medical_zh"
    with pytest.raises(FormattingError, match="no chat template"):
        resolve_template(tok, "chat")


def test_every_assistant_turn_trained_and_ends_with_end_of_turn(tokenizer) -> None:
    assert end_of_turn_token(tokenizer) == "<|im_end|>"
    ids, mask = tokenize_conversation(tokenizer, CONVERSATION)
    assert _trained_text(tokenizer, ids, mask) == "Hi there<|im_end|>Hello<|im_end|>"
    spans = trained_spans([t if m else -100 for t, m in zip(ids, mask, strict=True)])
    assert len(spans) == 2 and all(ids[end - 1] == tokenizer.eos_token_id for _, end in spans)
    assert tokenizer.decode(ids).count("<|im_start|>assistant") == 2  # the cue itself is context, not target


def test_alpaca_history_and_medical_records(tokenizer) -> None:
    record = {"system": "Be brief.", "history": [["2+2?", "4"]], "instruction": "3+3?", "input": "", "output": "6"}
    messages = to_chat_messages(record)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    ids, mask = tokenize_conversation(tokenizer, messages)
    assert _trained_text(tokenizer, ids, mask) == "4<|im_end|>6<|im_end|>"

    medical = {"instruction": "请回答以下医疗相关问题", "input": "头痛怎么办？", "output": "多休息。"}
    messages = to_chat_messages(medical, style="medical")
    assert messages[0] == {"role": "system", "content": MEDICAL_SYSTEM}
    assert messages[1]["content"] == "请回答以下医疗相关问题\n\n问题：头痛怎么办？"
    prompt = generation_prompt(tokenizer, medical, style="medical")
    assert prompt.endswith("问题：头痛怎么办？<|im_end|>\n<|im_start|>assistant\n") and "多休息" not in prompt
    assert reference_answer(medical) == "多休息。"
    assert reference_answer({"messages": CONVERSATION}) == "Hello"
    assert generation_prompt(tokenizer, {"messages": CONVERSATION}).endswith(
        "Once more<|im_end|>\n<|im_start|>assistant\n"
    )


def test_sft_dataset_and_check_formatting(tokenizer) -> None:
    records = [{"instruction": "Say hi", "input": "", "output": "Hi"}, {"messages": CONVERSATION, "tools": None}]
    data = sft_dataset(tokenizer, records, max_seq_length=256)
    assert data.column_names == ["input_ids", "attention_mask", "labels"] and len(data) == 2
    report = check_formatting(tokenizer, data, max_seq_length=256)
    assert report.mode == "tokenized" and 0 < report.label_share < 0.5 and report.n_over_length == 0

    # A label span that stops before the end-of-turn token is caught.
    row = dict(data[0])
    end = trained_spans(row["labels"])[-1][1]
    row["labels"] = row["labels"][: end - 1] + [-100] * (len(row["labels"]) - end + 1)
    with pytest.raises(FormattingError, match="not EOS"):
        check_formatting(tokenizer, [row])
    # Labels on every token: not answer-only.
    with pytest.raises(FormattingError, match="every token"):
        check_formatting(tokenizer, [{"input_ids": row["input_ids"], "labels": row["input_ids"]}])


def test_sft_dataset_truncation_counts_drops(tokenizer, capsys) -> None:
    long_prompt = {"instruction": "word " * 200, "input": "", "output": "Hi"}
    data = sft_dataset(tokenizer, [long_prompt, {"messages": CONVERSATION}], max_seq_length=120)
    assert len(data) == 1
    assert "1 dropped" in capsys.readouterr().out


def test_text_template_fallback(base_tokenizer) -> None:
    tok = copy.deepcopy(base_tokenizer)
    tok.chat_template = None
    data = sft_dataset(tok, [{"instruction": "Say hi", "input": "", "output": "Hi"}])
    assert data.column_names == ["prompt", "completion"] and data[0]["completion"] == "Hi" + tok.eos_token
    assert generation_prompt(tok, {"instruction": "Say hi"}).endswith("### Response:\n")
    pairs = dpo_dataset(tok, [{"prompt": "Q?", "chosen": "yes", "rejected": "no"}])
    assert pairs[0]["prompt"].endswith("### Instruction:\nQ?\n\n### Response:\n") and pairs[0]["chosen"] == "yes"


def test_dpo_pairs_conversational(tokenizer) -> None:
    pair = to_conversational_pair({"prompt": "Q?", "chosen": "yes", "rejected": "no"})
    assert pair == {
        "prompt": [{"role": "user", "content": "Q?"}],
        "chosen": [{"role": "assistant", "content": "yes"}],
        "rejected": [{"role": "assistant", "content": "no"}],
    }
    shaped = {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"}],
              "chosen": [{"role": "assistant", "content": "yes"}], "rejected": "no"}
    assert to_conversational_pair(shaped)["prompt"][0]["role"] == "system"
    data = dpo_dataset(tokenizer, [{"prompt": "Q?", "chosen": "yes", "rejected": "no"}])
    assert data[0]["chosen"] == [{"role": "assistant", "content": "yes"}]


def _model(eos_id):
    return SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=eos_id), config=SimpleNamespace())


def test_eos_mismatch_is_caught_with_a_fix(base_tokenizer) -> None:
    tok = copy.deepcopy(base_tokenizer)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert check_eos(tok, _model(im_end)) == []
    assert check_eos(tok, _model([im_end, 0])) == []
    # What transformers builds from SmolLM2's GGUF: eos <|im_start|>, while the model stops at <|im_end|>.
    tok.eos_token = "<|im_start|>"
    with pytest.raises(FormattingError, match=r"set tokenizer.eos_token = '<\|im_end\|>'"):
        check_eos(tok, _model(im_end))
    with pytest.raises(FormattingError, match=r"open a turn.*set tokenizer.eos_token = '<\|im_end\|>'"):
        check_eos(tok, chat=False)  # no model, text data: the chat template alone shows it
    # A tokenizer whose EOS is some other token: a chat-trained model would not stop.
    other = copy.deepcopy(base_tokenizer)
    other.eos_token = "<|endoftext|>"
    with pytest.raises(FormattingError, match=r"ends each turn with '<\|im_end\|>'"):
        check_eos(other)
    assert check_eos(other, chat=False) == []  # text data ends with <|endoftext|> itself: consistent
    assert check_eos(other, _model([0, im_end])) == []  # the model stops at both
    data = sft_dataset(copy.deepcopy(base_tokenizer), [{"messages": CONVERSATION}])
    with pytest.raises(FormattingError, match="EOS mismatch"):
        check_formatting(tok, data, model=_model(im_end))
    # The model's config disagrees with a right tokenizer: named with the id the model stops at.
    right = copy.deepcopy(base_tokenizer)
    with pytest.raises(FormattingError, match=r"stops at id\(s\) \[0\]"):
        check_eos(right, _model(0))


def test_sft_trainer_trains_assistant_tokens_only(model_dir, tmp_path) -> None:
    from kit.training.methods import load_for_training  # unsloth before trl

    model, tok, _ = load_for_training(str(model_dir), max_seq_length=128, load_in_4bit=False, lora_r=4,
                                      lora_alpha=4, seed=1)
    from trl import SFTTrainer

    from kit.training.config import sft_config

    data = sft_dataset(tok, [{"messages": CONVERSATION}, {"instruction": "Say hi", "input": "", "output": "Hi"}],
                       max_seq_length=128)
    check_formatting(tok, data, max_seq_length=128, model=model)
    trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=data,
                         args=sft_config(str(tmp_path), max_seq_length=128, max_steps=1,
                                         per_device_train_batch_size=2, gradient_accumulation_steps=1))
    batch = next(iter(trainer.get_train_dataloader()))
    trained = [tok.decode([t for t in row.tolist() if t != -100]) for row in batch["labels"]]
    assert sorted(trained) == sorted(["Hi there<|im_end|>Hello<|im_end|>", "Hi<|im_end|>"])


def test_tool_calls_a_template_cannot_render_are_written_in_and_trained(tokenizer, capsys) -> None:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    record = {"messages": [{"role": "user", "content": "Weather in Paris?"},
                           {"role": "assistant", "content": None, "tool_calls": [call]},
                           {"role": "tool", "content": "18C, sunny"},
                           {"role": "assistant", "content": "It is 18C and sunny."}],
              "tools": '[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]'}
    data = sft_dataset(tokenizer, [record])
    trained = tokenizer.decode([t for t in data[0]["labels"] if t != -100])
    # Both assistant turns are trained: the call (in the Hermes/Qwen <tool_call> form) and the answer.
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>' in trained
    assert trained.endswith("It is 18C and sunny.<|im_end|>")
    whole = tokenizer.decode(data[0]["input_ids"])
    assert "<tools>" in whole and "get_weather" in whole.split("<|im_start|>user")[0]  # schema in the system turn
    assert "<tools>" not in trained and "18C, sunny<|im_end|>" not in trained  # tool results are not trained
    assert "does not render tool calls" not in capsys.readouterr().out
    prompt = generation_prompt(tokenizer, record)
    assert "<tool_call>" in prompt and prompt.endswith("<|im_start|>assistant\n")
