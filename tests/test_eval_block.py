"""The before/after eval block: paired bootstrap, SFT generation in the chat format, DPO rewards, GRPO scores."""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import pytest

from kit.errors import KitError
from kit.evaluation.block import (
    eval_block,
    eval_count,
    eval_subset,
    format_block,
    paired_bootstrap,
    read_eval_blocks,
    table_block,
    worse_runs,
)
from kit.evaluation.scoring import GRPO_METRICS, generate_answers, grpo_scores, sft_eval

# --- bootstrap and block ----------------------------------------------------------------------------------


def test_all_positive_gains_give_an_interval_above_zero() -> None:
    before = [0.1, 0.2, 0.0, 0.3, 0.1, 0.2, 0.05, 0.15]
    after = [b + g for b, g in zip(before, [0.05, 0.1, 0.2, 0.02, 0.3, 0.1, 0.07, 0.12], strict=True)]
    gain = paired_bootstrap(before, after)
    assert gain["value"] == pytest.approx(0.12, abs=1e-4)
    lo, hi = gain["ci95"]
    assert 0 < lo < gain["value"] < hi
    assert paired_bootstrap(before, after) == gain  # seeded: the same numbers every time


def test_zero_gains_give_an_interval_holding_zero() -> None:
    same = [0.3, 0.1, 0.5, 0.2]
    assert paired_bootstrap(same, same) == {"value": 0.0, "ci95": [0.0, 0.0]}
    mixed = paired_bootstrap([0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [0.6, 0.4, 0.7, 0.3, 0.5, 0.5])
    lo, hi = mixed["ci95"]
    assert mixed["value"] == 0.0 and lo < 0 < hi


def test_bootstrap_skips_nan_pairs_and_rejects_unpaired_input() -> None:
    assert paired_bootstrap([0.0, math.nan, 0.0], [1.0, 0.0, 1.0]) == {"value": 1.0, "ci95": [1.0, 1.0]}
    assert paired_bootstrap([math.nan], [1.0])["value"] is None
    with pytest.raises(KitError, match="same length"):
        paired_bootstrap([0.1, 0.2], [0.3])


def test_means_cover_the_items_the_gain_pairs() -> None:
    """An item scored NaN on one side leaves every side's mean, so the printed before -> after is the gain."""
    nan = float("nan")
    block = eval_block({"distinct_2": [0.2, nan, 0.4, 0.6]}, {"distinct_2": [0.5, 0.9, nan, 0.8]},
                       warmup={"distinct_2": [0.3, 0.1, 0.2, nan]})
    assert block["before"]["distinct_2"] == 0.2 and block["after"]["distinct_2"] == 0.5
    assert block["gain"]["distinct_2"]["value"] == pytest.approx(block["after"]["distinct_2"] - block["before"]["distinct_2"])
    assert block["gain_over_warmup"]["distinct_2"]["value"] == pytest.approx(0.2)


def test_eval_block_shape_and_text() -> None:
    block = eval_block({"rouge_l": [0.1, 0.2], "bleu": [0.0, 0.1]}, {"rouge_l": [0.3, 0.4], "bleu": [0.1, 0.1]})
    assert block["split"] == "holdout" and block["n"] == 2
    assert block["before"] == {"rouge_l": 0.15, "bleu": 0.05} and block["after"] == {"rouge_l": 0.35, "bleu": 0.1}
    assert block["gain"]["rouge_l"] == {"value": 0.2, "ci95": [0.2, 0.2]}
    json.dumps(block)  # plain JSON types only
    assert "rouge_l: 0.1500 -> 0.3500 (gain +0.2000, ci95 +0.2000..+0.2000, better)" in format_block(block)
    with pytest.raises(KitError, match="same metrics"):
        eval_block({"rouge_l": [0.1]}, {"bleu": [0.1]})
    with pytest.raises(KitError, match="one score per held-out item"):
        eval_block({"rouge_l": [0.1, 0.2]}, {"rouge_l": [0.1]})


def test_eval_count_and_subset() -> None:
    assert eval_count(48, 30) == 30 and eval_count(8, 30) == 8 and eval_count(None, 30) == 30
    assert eval_count(-1, 30) == 30
    with pytest.raises(KitError, match=r"^eval_samples=0 does not skip evaluation: .* Set a small number"):
        eval_count(0, 30)
    assert eval_subset(list(range(10)), 4) == [0, 1, 2, 3]
    with pytest.raises(KitError, match="held-out split is empty"):
        eval_subset([], 4)


def test_read_eval_blocks_flags_worse_and_missing(tmp_path: Path) -> None:
    better = eval_block({"rouge_l": [0.1, 0.2, 0.1]}, {"rouge_l": [0.3, 0.4, 0.2]})
    worse = eval_block({"reward_accuracy": [1.0] * 8}, {"reward_accuracy": [0.0] * 7 + [1.0]})
    for name, payload in {"a": {"notebook": "01", "eval": better}, "b": {"notebook": "04", "eval": worse},
                          "c": {"notebook": "03"}}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(payload), encoding="utf-8")
    table = read_eval_blocks({n: tmp_path / n for n in "abc"})
    assert list(table["verdict"]) == ["better", "worse", "missing"]
    lines = worse_runs(table)
    assert len(lines) == 2 and lines[0].startswith("b: reward_accuracy fell") and lines[1].startswith("c: no eval")
    with pytest.raises(KitError, match=r"no metrics\.json"):
        read_eval_blocks({"x": tmp_path / "nowhere"})


# --- GRPO: canned completions ----------------------------------------------------------------------------------


def test_grpo_scores_on_canned_completions() -> None:
    completions = [
        "<reasoning>\n3 × 6 = 18\n</reasoning>\n最终答案：18",  # right, in format
        "<reasoning>\n3 × 6 = 19\n</reasoning>\n最终答案：19",  # wrong, in format
        "3 boxes of 6 make 18.",  # right as the last number, no format
        "",  # nothing
        [{"role": "assistant", "content": "<reasoning>x</reasoning> 最终答案：18"}],  # TRL's chat completion
    ]
    scores = grpo_scores(completions, ["#### 18"] * 5, "zh")
    assert scores == {"accuracy": [1.0, 0.0, 1.0, 0.0, 1.0], "format_rate": [1.0, 1.0, 0.0, 0.0, 1.0]}
    block = eval_block(grpo_scores(completions[2:4], [18, 18]), grpo_scores(completions[:2], [18, 18]))
    assert set(block["gain"]) == set(GRPO_METRICS) and block["gain"]["format_rate"]["value"] == 1.0
    xml = grpo_scores(["<reasoning>a</reasoning>\n<answer>\n7\n</answer>"], ["7"], "xml")
    assert xml == {"accuracy": [1.0], "format_rate": [1.0]}
    with pytest.raises(KitError, match="one answer per completion"):
        grpo_scores(["a"], [])


# --- the tiny model: generation in the chat format, DPO rewards ---------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(request) -> Path:
    """The tiny model: a prebuilt one from KIT_TINY_MODEL_DIR (faster local runs), else the session's."""
    prebuilt = os.environ.get("KIT_TINY_MODEL_DIR")
    return Path(prebuilt) if prebuilt else request.getfixturevalue("tiny_model_dir")


@pytest.fixture(scope="module")
def tiny(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)


RECORDS = [
    {"instruction": "Say hi", "input": "", "output": "Hi"},
    {"instruction": "Translate to English", "input": "你好", "output": "Hello"},
    {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
]


def test_sft_eval_generates_with_the_chat_template(tiny) -> None:
    model, tokenizer = tiny
    table = sft_eval(model, tokenizer, RECORDS, max_new_tokens=4, batch_size=2, progress=False, label="base")
    assert list(table["reference"]) == ["Hi", "Hello", "4"]
    assert all(p.startswith("<|im_start|>user\n") and p.endswith("<|im_end|>\n<|im_start|>assistant\n")
               for p in table["prompt"])
    assert "你好" in table["prompt"][1] and "Hi" not in table["prompt"][0].split("user\n", 1)[1]
    # The same answers as generating from the rendered chat prompts one by one (left padding changes nothing).
    alone = [generate_answers(model, tokenizer, [p], max_new_tokens=4, progress=False, add_special_tokens=False)[0]
             for p in table["prompt"]]
    assert list(table["prediction"]) == alone
    block = table_block(table, table.copy())
    assert block["n"] == 3 and block["gain"]["rouge_l"] == {"value": 0.0, "ci95": [0.0, 0.0]}
    text_tokenizer = copy.deepcopy(tokenizer)
    text_tokenizer.chat_template = None
    text = sft_eval(model, text_tokenizer, RECORDS[:2], max_new_tokens=2, progress=False)
    assert text["prompt"][0].endswith("### Response:\n")


PAIRS = [
    {"prompt": "What is the capital of Canada?", "chosen": "Ottawa.", "rejected": "Toronto."},
    {"prompt": "What is 7 × 8?", "chosen": "7 × 8 = 56.", "rejected": "7 × 8 = 54."},
    {"prompt": [{"role": "user", "content": "Say hi"}], "chosen": [{"role": "assistant", "content": "Hi!"}],
     "rejected": [{"role": "assistant", "content": "No."}]},
]


def test_dpo_eval_on_the_tiny_model(tiny) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from kit.evaluation.preference import DPO_METRICS, dpo_eval_block, pair_tokens, sequence_logps
    from kit.formatting.chat_format import to_conversational_pair

    base, tokenizer = tiny
    pairs = [to_conversational_pair(p) for p in PAIRS]
    # The log-probs are those of the answer tokens after the prompt, as a plain forward pass gives them.
    prompt, chosen, _ = pair_tokens(tokenizer, pairs[0])
    assert tokenizer.decode(chosen).startswith("Ottawa.<|im_end|>")
    assert tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")
    with torch.no_grad():
        ids = torch.tensor([prompt + chosen])
        logp = torch.log_softmax(base(input_ids=ids).logits[0, :-1].float(), -1)
        expected = float(sum(logp[i - 1, ids[0, i]] for i in range(len(prompt), ids.shape[1])))
    assert sequence_logps(base, tokenizer, pairs[:1])[0][0] == pytest.approx(expected, rel=1e-4)

    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    block = dpo_eval_block(model, tokenizer, pairs, beta=0.1, batch_size=2)
    assert block["n"] == 3 and set(block["gain"]) == set(DPO_METRICS)
    # A fresh LoRA (B = 0) is the reference itself: no gain, and "before" is the reference's own preference.
    assert block["before"] == block["after"] and block["gain"]["reward_margin"]["value"] == 0.0
    implicit = {k: block["implicit"][k] for k in ("reward_accuracy", "reward_margin")}
    assert implicit == {"reward_accuracy": 0.0, "reward_margin": 0.0}
    assert block["implicit"]["reward_accuracy_ci95"] == [0.0, 0.0]
    ref_c, ref_r = sequence_logps(base, tokenizer, pairs)
    assert block["before"]["reward_accuracy"] == round(sum(c > r for c, r in zip(ref_c, ref_r)) / 3, 4)

    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    moved = dpo_eval_block(model, tokenizer, pairs, beta=0.1, batch_size=2)
    assert moved["before"] == block["before"]  # the reference is the adapter-free base, whatever the adapter
    assert moved["gain"]["reward_margin"]["value"] != 0.0
    assert moved["gain"]["reward_margin"]["value"] == pytest.approx(moved["implicit"]["reward_margin"], abs=2e-4)


def test_write_metrics_stores_the_block(tmp_path: Path) -> None:
    from kit.runinfo import write_metrics

    block = eval_block({"rouge_l": [0.1, 0.2]}, {"rouge_l": [0.3, 0.2]})
    path = write_metrics(tmp_path, notebook="01_alpaca_sft", eval=block)
    assert json.loads(path.read_text(encoding="utf-8"))["eval"] == block
    assert "eval" not in json.loads(write_metrics(tmp_path / "none", notebook="x").read_text(encoding="utf-8"))
    with pytest.raises(KitError, match=r"lacks \['gain'\]"):
        write_metrics(tmp_path, notebook="x", eval={"split": "holdout", "n": 1, "before": {}, "after": {}})


def test_dpo_pairs_train_and_score_as_dpotrainer_sees_them(model_dir, tmp_path: Path) -> None:
    """The conversational pairs go through Unsloth's DPOTrainer, and our log-probs are the ones it logs."""
    from kit.training.methods import load_for_training  # unsloth before trl

    model, tokenizer, _ = load_for_training(str(model_dir), max_seq_length=128, load_in_4bit=False, lora_r=4,
                                            lora_alpha=4, seed=1)
    from trl import DPOTrainer

    from kit.evaluation.preference import reference_of, sequence_logps
    from kit.formatting.chat_format import dpo_dataset
    from kit.training.config import dpo_config

    pairs = dpo_dataset(tokenizer, PAIRS[:2])
    with reference_of(model):
        ref_chosen, ref_rejected = sequence_logps(model, tokenizer, list(pairs))
    trainer = DPOTrainer(model=model, processing_class=tokenizer, train_dataset=pairs,
                         args=dpo_config(str(tmp_path), max_seq_length=128, max_steps=1, per_device_train_batch_size=2,
                                         gradient_accumulation_steps=1))
    assert tokenizer.decode(trainer.train_dataset[0]["chosen_ids"]) == "Ottawa.<|im_end|>\n"
    trainer.train()
    logged = next(e for e in trainer.state.log_history if "logps/chosen" in e)  # step 1: policy == reference
    assert logged["logps/chosen"] == pytest.approx(sum(ref_chosen) / 2, rel=1e-2)
    assert logged["logps/rejected"] == pytest.approx(sum(ref_rejected) / 2, rel=1e-2)


def test_pairs_over_length_counts_the_pairs_dpo_would_cut(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from kit.evaluation.preference import pairs_over_length

    tok = AutoTokenizer.from_pretrained(model_dir)
    short = {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello."}],
             "rejected": [{"role": "assistant", "content": "Go away."}]}
    long = {**short, "chosen": [{"role": "assistant", "content": "word " * 200}]}
    assert pairs_over_length(tok, [short, long], 64) == 1
    assert pairs_over_length(tok, [short, long], None) == 0
    assert pairs_over_length(tok, [short, long], 4096) == 0
