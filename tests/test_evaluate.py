"""Tests for kit.evaluation.scoring: metric values worked out by hand, and generation on the offline tiny model."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.errors import KitError
from kit.evaluation.scoring import (
    METRICS,
    bleu,
    compare,
    evaluate_generations,
    exact_match,
    generate_answers,
    last_number,
    numeric_match,
    plot_comparison,
    rouge_l,
    score,
    summarize,
    tokenize_for_metrics,
)

# --- tokenisation -------------------------------------------------------------------------------------


def test_tokenize_splits_chinese_per_character_and_keeps_latin_words_whole() -> None:
    assert tokenize_for_metrics("今天天气很好") == ["今", "天", "天", "气", "很", "好"]
    assert tokenize_for_metrics("我喜欢Python编程!") == ["我", "喜", "欢", "python", "编", "程"]
    assert tokenize_for_metrics("Hello, World... GPT4 don't") == ["hello", "world", "gpt4", "don't"]


def test_tokenize_normalises_full_width_numbers_and_drops_punctuation() -> None:
    assert tokenize_for_metrics("共１，０８０元。") == ["共", "1080", "元"]
    assert tokenize_for_metrics("pi is 3.14!") == ["pi", "is", "3.14"]
    assert tokenize_for_metrics("，。！？ …") == []


# --- ROUGE-L / BLEU / exact match ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["The cat sat on the mat.", "今天天气很好", "我喜欢 Python 编程", "x"])
def test_identical_strings_score_one(text: str) -> None:
    assert rouge_l(text, text) == pytest.approx(1.0)
    assert bleu(text, text) == pytest.approx(1.0)
    assert exact_match(text, text) == 1.0


@pytest.mark.parametrize(
    ("pred", "ref"), [("the cat sat", "dogs run fast"), ("今天天气", "明日下雨"), ("abc", "数学")]
)
def test_disjoint_strings_score_zero(pred: str, ref: str) -> None:
    assert rouge_l(pred, ref) == 0.0
    assert bleu(pred, ref) == 0.0
    assert exact_match(pred, ref) == 0.0


def test_chinese_rouge_l_is_per_character() -> None:
    # LCS 今天天气 = 4 of 6 characters on both sides: P = R = 4/6, so F = 2/3.
    assert rouge_l("今天天气很好", "今天天气不错") == pytest.approx(4 / 6, abs=1e-4)


def test_chinese_bleu_matches_hand_computation() -> None:
    # p1 = 4/6; smoothed p2 = (3+1)/(5+1), p3 = (2+1)/(4+1), p4 = (1+1)/(3+1); equal lengths so BP = 1.
    expected = (4 / 6 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25
    assert bleu("今天天气很好", "今天天气不错") == pytest.approx(expected, rel=1e-9)


def test_rouge_l_precision_recall_asymmetric_lengths() -> None:
    # pred 2 tokens, ref 4 tokens, LCS 2: P = 1, R = 0.5, F = 2/3.
    assert rouge_l("a b", "a x b y") == pytest.approx(2 / 3)


def test_bleu_brevity_penalty_and_smoothing() -> None:
    # All smoothed precisions are 1 for a prefix; only the brevity penalty exp(1 - 4/2) remains.
    assert bleu("a b", "a b c d") == pytest.approx(math.exp(-1))
    assert bleu("a b", "a c", smooth=False) == 0.0  # no bigram match and no smoothing
    assert 0.0 < bleu("a b", "a c") < 1.0
    assert bleu("a b c d", "a b c d", max_n=2) == pytest.approx(1.0)


def test_mixed_chinese_english() -> None:
    assert exact_match("我喜欢Python编程", "我喜欢 python 编程。") == 1.0
    assert rouge_l("我喜欢 Python 编程", "我喜欢 Java 编程") == pytest.approx(5 / 6)
    assert 0.0 < bleu("我喜欢 Python 编程", "我喜欢 Java 编程") < 1.0


def test_exact_match_ignores_case_whitespace_and_punctuation() -> None:
    assert exact_match("  Hello,   WORLD! ", "hello world") == 1.0
    assert exact_match("hello world", "hello there") == 0.0


@pytest.mark.parametrize(("pred", "ref"), [("", ""), ("", "text"), ("text", ""), ("   ", "。"), (None, None)])
def test_empty_strings_score_zero_without_crashing(pred: str, ref: str) -> None:
    result = score(pred, ref)
    assert set(result) == set(METRICS)
    for metric in ("exact_match", "rouge_l", "bleu"):
        assert result[metric] == 0.0
    assert rouge_l(pred or "", ref or "") == 0.0
    assert bleu(pred or "", ref or "") == 0.0


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_metrics_stay_in_unit_interval_for_any_text(pred: str, ref: str) -> None:
    result = score(pred, ref)
    for metric in ("exact_match", "rouge_l", "bleu"):
        assert 0.0 <= result[metric] <= 1.0 + 1e-12
    assert math.isnan(result["numeric_match"]) or result["numeric_match"] in (0.0, 1.0)
    assert rouge_l(pred, ref) == pytest.approx(rouge_l(ref, pred))


# --- numeric match ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "ref"),
    [
        ("The answer is 18.", "18"),
        ("A: 18", "18"),
        ("18.0", "18"),
        ("<reasoning>6*3=18</reasoning>\n最终答案：１８", "18"),
        ("so the total is 1,080 dollars", "#### 1,080"),
        ("She paid $109,200,000", "109200000"),
        ("It drops by -3 degrees", "-3"),
        ("temperature \u22123", "-3"),
        ("half of it: 1/2", "0.5"),
        (
            "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\n#### 18\nfinal 18",
            "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18",
        ),
    ],
)
def test_numeric_match_accepts_equal_numbers(pred: str, ref: str) -> None:
    assert numeric_match(pred, ref) == 1.0


@pytest.mark.parametrize(
    ("pred", "ref"),
    [
        ("The answer is 17.", "18"),
        ("18 apples, then 19", "18"),  # the last number counts
        ("no number here", "18"),
        ("18", "no number"),
        ("__import__('os').system('echo 18; exit 1')", "19"),  # never eval'd
        ("1/0", "0"),
    ],
)
def test_numeric_match_rejects_other_numbers(pred: str, ref: str) -> None:
    assert numeric_match(pred, ref) == 0.0


def test_last_number_handles_separators_and_decimals() -> None:
    assert last_number("between 1,080 and 2,500.50") == pytest.approx(2500.5)
    assert last_number("nothing") is None
    assert (
        score("18", "medical answer")["numeric_match"] != score("18", "medical answer")["numeric_match"]
    )  # NaN


# --- generation on the tiny model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory):
    from kit.builders.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-eval"))


@pytest.fixture
def tiny(tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_dir), AutoTokenizer.from_pretrained(tiny_dir)


PROMPTS = ["Hello there", "今天天气很好，我们去", "The answer is"]


def test_generate_answers_restores_padding_side_and_training_mode(tiny) -> None:
    model, tokenizer = tiny
    model.train()
    assert tokenizer.padding_side == "right"
    answers = generate_answers(model, tokenizer, PROMPTS, max_new_tokens=4, batch_size=2, progress=False)
    assert len(answers) == len(PROMPTS) and all(isinstance(a, str) and a for a in answers)
    assert tokenizer.padding_side == "right"
    assert model.training
    assert not any(prompt in answer for prompt, answer in zip(PROMPTS, answers, strict=True))  # only new text
    assert not any("<|im_end|>" in a or "<|endoftext|>" in a for a in answers)


def test_generate_answers_is_greedy_and_batch_independent(tiny) -> None:
    model, tokenizer = tiny
    batched = generate_answers(model, tokenizer, PROMPTS, max_new_tokens=4, batch_size=8, progress=False)
    single = generate_answers(model, tokenizer, PROMPTS, max_new_tokens=4, batch_size=1, progress=False)
    assert batched == single
    assert not model.training  # it was in eval mode before (from_pretrained), and stays there
    assert generate_answers(model, tokenizer, [], progress=False) == []


def test_generate_answers_accepts_chat_messages_and_missing_pad_token(tiny) -> None:
    model, tokenizer = tiny
    tokenizer.pad_token = None
    messages = [[{"role": "user", "content": "你好"}], [{"role": "user", "content": "What is 2+2?"}]]
    answers = generate_answers(model, tokenizer, messages, max_new_tokens=3, progress=False)
    assert len(answers) == 2
    assert tokenizer.pad_token is None
    with pytest.raises(KitError):
        generate_answers(model, tokenizer, [42], progress=False)


def test_generate_answers_calls_unsloth_hooks_when_present(tiny) -> None:
    model, tokenizer = tiny
    calls: list[str] = []
    model.for_inference = lambda: (calls.append("inference"), model.eval())
    model.for_training = lambda: (calls.append("training"), model.train())
    model.train()
    generate_answers(model, tokenizer, PROMPTS[:1], max_new_tokens=2, progress=False)
    assert calls == ["inference", "training"]
    assert model.training


def test_headless_progress_prints_plain_lines_and_no_bar(tiny, capsys, monkeypatch) -> None:
    model, tokenizer = tiny
    monkeypatch.setenv("KIT_HEADLESS", "1")
    generate_answers(model, tokenizer, PROMPTS * 10, max_new_tokens=1, batch_size=1)
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if line.startswith("[generate]")]
    assert 1 <= len(lines) <= 11
    assert lines[-1].startswith("[generate] 30/30")
    assert "it/s" not in captured.err and "prompt/s" not in captured.err


def test_tqdm_bar_when_interactive(tiny, capsys, monkeypatch) -> None:
    model, tokenizer = tiny
    monkeypatch.delenv("KIT_HEADLESS", raising=False)
    generate_answers(model, tokenizer, PROMPTS, max_new_tokens=1)
    captured = capsys.readouterr()
    assert "[generate]" not in captured.out
    assert "generate" in captured.err  # tqdm writes to stderr


def test_evaluate_generations_table_and_summary(tiny, monkeypatch) -> None:
    from datasets import Dataset

    model, tokenizer = tiny
    monkeypatch.setenv("KIT_HEADLESS", "1")
    records = [
        {"instruction": "Hello there", "output": "there there"},
        {"instruction": "今天天气很好", "output": "18"},
        {"instruction": "The answer is", "output": "is is"},
    ]
    df = evaluate_generations(
        model,
        tokenizer,
        Dataset.from_list(records),
        prompt_fn=lambda r: r["instruction"],
        max_new_tokens=4,
        label="base",
    )
    assert list(df.columns) == ["idx", "label", "prompt", "reference", "prediction", *METRICS]
    assert len(df) == 3 and set(df["label"]) == {"base"}
    assert df["reference"].tolist() == ["there there", "18", "is is"]
    for metric in ("exact_match", "rouge_l", "bleu"):
        assert df[metric].between(0, 1).all()
    # Only row 1 has a numeric reference, so numeric_match is NaN elsewhere and the mean covers one row.
    assert df["numeric_match"].isna().tolist() == [True, False, True]
    summary = summarize(df)
    assert summary["label"] == "base" and summary["n"] == 3
    assert summary["rouge_l"] == pytest.approx(df["rouge_l"].mean(), abs=1e-4)
    assert summary["numeric_match"] in (0.0, 1.0)
    with pytest.raises(KitError, match="answer"):
        evaluate_generations(
            model, tokenizer, records, prompt_fn="instruction", reference_key="answer", max_new_tokens=1
        )


def test_summarize_compare_and_plot_on_fixed_tables(tmp_path) -> None:
    import matplotlib.pyplot as plt
    import pandas as pd

    def table(preds: list[str], label: str) -> pd.DataFrame:
        refs = ["今天天气很好", "the answer is 18"]
        rows = [
            {"idx": i, "label": label, "prompt": f"q{i}", "reference": r, "prediction": p, **score(p, r)}
            for i, (p, r) in enumerate(zip(preds, refs, strict=True))
        ]
        frame = pd.DataFrame(rows)
        frame.attrs["label"] = label
        return frame

    before = table(["明日下雨", "I think 17"], "base")
    after = table(["今天天气不错", "The answer is 18."], "tuned")
    s_before, s_after = summarize(before), summarize(after)
    assert s_before["rouge_l"] == 0.0 and s_before["numeric_match"] == 0.0
    assert s_after["numeric_match"] == 1.0 and s_after["rouge_l"] > 0.5

    joined = compare(before, after)
    assert joined["idx"].tolist() == [0, 1]
    assert joined["rouge_l_delta"].iloc[0] == pytest.approx(4 / 6, abs=1e-4)
    assert joined["numeric_match_delta"].iloc[1] == 1.0
    assert (joined["rouge_l_after"] - joined["rouge_l_before"]).equals(joined["rouge_l_delta"])

    bad = after.copy()
    bad.loc[0, "reference"] = "something else"
    with pytest.raises(KitError, match="reference"):
        compare(before, bad)

    out = tmp_path / "plots" / "comparison.png"
    figure = plot_comparison(s_before, s_after, path=out)
    assert out.is_file() and out.stat().st_size > 1000
    assert len(figure.axes[0].patches) == 2 * len(METRICS)
    assert plt.get_fignums() == []  # no pyplot figure left open (nothing to show headless)
    with pytest.raises(KitError):
        plot_comparison({"label": "a"}, {"label": "b"})


def test_generate_answers_with_a_real_unsloth_model(tiny_dir) -> None:
    """Unsloth's own for_inference/for_training hooks (CPU fallback), in a subprocess so its patches stay out."""
    script = textwrap.dedent(
        f"""
        from unsloth import FastLanguageModel
        from kit.evaluation.scoring import generate_answers
        model, tok = FastLanguageModel.from_pretrained({str(tiny_dir)!r}, max_seq_length=128, load_in_4bit=False)
        model = FastLanguageModel.get_peft_model(model, r=4, target_modules=["q_proj", "v_proj"], lora_alpha=4)
        model.train()
        side = tok.padding_side
        answers = generate_answers(model, tok, ["Hello there", "今天"], max_new_tokens=3, progress=False)
        assert len(answers) == 2 and all(isinstance(a, str) for a in answers), answers
        assert model.training and tok.padding_side == side, (model.training, tok.padding_side)
        print("OK", answers)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


def test_eval_set_round_trips_chinese(tmp_path) -> None:
    from kit.evaluation.scoring import load_eval_set, save_eval_set

    save_eval_set(tmp_path, ["问题：头痛？\n回答：", "Q: 1+1?"], ["多休息。", "2"])
    assert load_eval_set(tmp_path) == [{"prompt": "问题：头痛？\n回答：", "reference": "多休息。"},
                                       {"prompt": "Q: 1+1?", "reference": "2"}]
    with pytest.raises(KitError):
        load_eval_set(tmp_path / "nowhere")


def test_distinct_2_measures_repetition_and_the_warning() -> None:
    from kit.evaluation.scoring import SFT_METRICS, distinct_n, repetition_warning

    assert distinct_n("the cat sat on the mat") == 1.0
    assert distinct_n("可能是痛痰，可能是痛痰，或者是痛痰") < 0.8  # the loops the medical fine-tune produced
    assert math.isnan(distinct_n("one"))
    assert score("a b a b a b", "a b")["distinct_2"] == pytest.approx(2 / 5)
    assert "distinct_2" in SFT_METRICS
    fell = {"before": {"distinct_2": 0.9}, "after": {"distinct_2": 0.4},
            "gain": {"distinct_2": {"value": -0.5, "ci95": [-0.7, -0.3]}}}
    line = repetition_warning(fell)
    assert line.startswith("[repetition]") and "0.900 -> 0.400" in line and "worse" in line
    assert "重复惩罚" in repetition_warning(fell, lang="zh")
    rose = {**fell, "gain": {"distinct_2": {"value": 0.1, "ci95": [0.0, 0.2]}}}
    assert repetition_warning(rose) is None and repetition_warning({"gain": {}}) is None
