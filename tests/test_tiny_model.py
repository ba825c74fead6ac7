"""The offline tiny model: small, deterministic, with a tokenizer that round-trips and masks assistant turns."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kit.builders.tiny import IM_END, PAD_TOKEN, build_tiny_model
from kit.cli import main as kit_main


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_build_is_deterministic_and_small(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoConfig

    again = build_tiny_model(tmp_path / "again")
    assert _digest(again) == _digest(tiny_model_dir)
    config = AutoConfig.from_pretrained(tiny_model_dir)
    assert config.model_type == "qwen2"
    import json

    info = json.loads((tiny_model_dir / "kit_tiny_model.json").read_text(encoding="utf-8"))
    assert 100_000 <= info["parameters"] <= 1_000_000
    first, last = info["pretrain_loss"]
    assert last < first - 1.0  # the warm-up on data/ really trained it


def test_other_seed_gives_other_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    from kit.builders.tiny import TinyModelSpec

    other = build_tiny_model(tmp_path / "other", spec=TinyModelSpec(seed=1, pretrain_steps=0))
    assert _digest(other)["model.safetensors"] != _digest(tiny_model_dir)["model.safetensors"]
    assert _digest(other)["tokenizer.json"] == _digest(tiny_model_dir)["tokenizer.json"]


def test_tokenizer_round_trips_and_has_special_tokens(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tok.eos_token == IM_END and tok.pad_token == PAD_TOKEN and tok.eos_token_id != tok.pad_token_id
    for text in ("Hello, world! 18.0 $1,080", "请回答以下医疗相关问题：头痛怎么办？", "最终答案：１８\u3000飯後", "emoji 🙂 tab\tend"):
        assert tok.decode(tok(text)["input_ids"]) == text


def test_chat_template_marks_only_the_assistant_turn(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [{"role": "system", "content": "你是医疗助手"}, {"role": "user", "content": "头痛"},
                {"role": "assistant", "content": "请多休息"}]
    out = tok.apply_chat_template(messages, return_assistant_tokens_mask=True, return_dict=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    trained = tok.decode([i for i, m in zip(ids, mask) if m])
    assert trained == "请多休息" + IM_END
    prompt = tok.apply_chat_template(messages[:2], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_cli_builds_the_model(tmp_path: Path, capsys) -> None:
    assert kit_main(["tiny-model", str(tmp_path / "m"), "--pretrain-steps", "0"]) == 0
    assert "tiny model:" in capsys.readouterr().out and (tmp_path / "m" / "config.json").is_file()
