"""Score generations against references (ROUGE-L, BLEU, exact and numeric match) and compare two models.

Chinese has no spaces, so the metrics tokenise with :func:`tokenize_for_metrics`: each CJK character is
one token (Chinese is scored per character) while Latin words and numbers stay whole, lowercased, and
punctuation is dropped. The usual flow on a held-out split the model never saw: ``evaluate_generations``
for the base model and the fine-tuned one, then ``compare`` and ``plot_comparison``.
"""

from __future__ import annotations

import math
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.runinfo import is_headless

METRICS = ("exact_match", "rouge_l", "bleu", "numeric_match", "distinct_2")
# What an SFT eval block scores: overlap with the reference, and distinct_2 so a fine-tune that learned to
# repeat itself shows (higher distinct_2 = less repetition).
SFT_METRICS = ("rouge_l", "bleu", "distinct_2")

# CJK ideographs (basic, extensions A-F, compatibility) and Japanese kana: one token per character.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_CJK_CHAR = re.compile(f"([{_CJK}])")
# A number with thousands separators or decimals, else a run of letters/digits (with inner apostrophes).
_TOKEN = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:'[^\W_]+)*")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _normalise(text: str) -> str:
    """NFKC (full-width digits/letters -> ASCII), unicode minus -> '-', lowercased."""
    return unicodedata.normalize("NFKC", text or "").replace("\u2212", "-").lower()


def tokenize_for_metrics(text: str) -> list[str]:
    """Tokens for BLEU/ROUGE: one per CJK character, whole lowercased Latin words and numbers, no punctuation."""
    spaced = _CJK_CHAR.sub(r" \1 ", _normalise(text))
    tokens = []
    for token in _TOKEN.findall(spaced):
        if _THOUSANDS.fullmatch(token):
            token = token.replace(",", "")
        tokens.append(token)
    return tokens


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, in O(len(a) * len(b)) time and O(len(b)) memory."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: ``2PR/(P+R)`` with ``P = LCS/len(pred)``, ``R = LCS/len(ref)``; 0.0 if either is empty."""
    pred, ref = tokenize_for_metrics(prediction), tokenize_for_metrics(reference)
    if not pred or not ref:
        return 0.0
    lcs = _lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu(prediction: str, reference: str, max_n: int = 4, smooth: bool = True) -> float:
    """Sentence BLEU: brevity penalty times the geometric mean of clipped 1..max_n-gram precisions.

    ``smooth`` adds one to the matches and the total of every order n >= 2 (Lin & Och 2004, NLTK's
    ``method2``), so short sentences do not collapse to 0 while a prediction sharing no word with the
    reference still scores 0.0. Without smoothing any order with no match gives 0.0. Empty -> 0.0.
    """
    pred, ref = tokenize_for_metrics(prediction), tokenize_for_metrics(reference)
    if not pred or not ref or max_n < 1:
        return 0.0
    log_sum = 0.0
    for n in range(1, max_n + 1):
        pred_counts, ref_counts = _ngrams(pred, n), _ngrams(ref, n)
        matches = sum(min(count, ref_counts[gram]) for gram, count in pred_counts.items())
        total = max(0, len(pred) - n + 1)
        if smooth and n > 1:
            matches, total = matches + 1, total + 1
        if matches == 0 or total == 0:
            return 0.0
        log_sum += math.log(matches / total) / max_n
    brevity = 1.0 if len(pred) > len(ref) else math.exp(1 - len(ref) / len(pred))
    return brevity * math.exp(log_sum)


def exact_match(pred: str, ref: str) -> float:
    """1.0 when both have the same tokens (case, whitespace, punctuation and full-width forms ignored), else 0.0."""
    pred_tokens, ref_tokens = tokenize_for_metrics(pred), tokenize_for_metrics(ref)
    return 1.0 if ref_tokens and pred_tokens == ref_tokens else 0.0


def last_number(text: str) -> Fraction | None:
    """The last number in ``text`` (``1,080``, ``-3``, ``18.0``, ``３／４``, full-width digits), or None. Never evals.

    The same parser as the GRPO rewards (:mod:`kit.rewards.numbers`), so evaluation and rewards agree.
    """
    from kit.rewards.numbers import parse_number

    return parse_number(text)


def reference_number(reference: str) -> Fraction | None:
    """The number a reference states: the text after a GSM8K ``####`` if present, else its last number."""
    from kit.rewards.numbers import reference_value

    return reference_value(reference)


def numeric_match(pred: str, ref: str) -> float:
    """1.0 when the last number in ``pred`` equals the reference number (``18.0`` == ``18``), else 0.0."""
    expected, got = reference_number(ref), last_number(pred)
    if expected is None or got is None:
        return 0.0
    tolerance = Fraction(1, 10**6) * max(1, abs(expected))
    return 1.0 if abs(got - expected) <= tolerance else 0.0


def distinct_n(text: str, n: int = 2) -> float:
    """Share of distinct n-grams among an answer's n-grams (metric tokens): 1.0 when nothing repeats, lower as the
    answer loops (``食肉时间、食肉时间、…``). NaN for an answer shorter than ``n`` tokens (nothing to judge)."""
    tokens = tokenize_for_metrics(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else math.nan


def repetition_warning(block: dict[str, Any], lang: str = "en") -> str | None:
    """One line when the fine-tune made answers repeat more (distinct_2 fell), with its ci95 and verdict; else None."""
    from kit.evaluation.block import verdict

    gain = (block.get("gain") or {}).get("distinct_2")
    if not gain or gain.get("value") is None or gain["value"] >= 0:
        return None
    lo, hi = gain["ci95"]
    before, after = block["before"]["distinct_2"], block["after"]["distinct_2"]
    word = verdict(gain)
    if lang == "zh":
        return (f"[重复] 微调后的回答比微调前更爱重复：distinct_2 {before:.3f} -> {after:.3f}（95% 置信区间 "
                f"{lo:+.3f}..{hi:+.3f}，{ {'worse': '确实更差', 'unclear': '不确定'}.get(word, word)}）；"
                "使用时可设置重复惩罚，见下面的说明")
    return (f"[repetition] the fine-tuned answers repeat themselves more: distinct_2 {before:.3f} -> {after:.3f} "
            f"(ci95 {lo:+.3f}..{hi:+.3f}, {word}); for use, set a repetition penalty (see the note below)")


def score(prediction: str, reference: str) -> dict[str, float]:
    """Every metric for one pair; ``numeric_match`` is NaN when the reference holds no number (so means skip it),
    ``distinct_2`` NaN when the answer has fewer than two tokens."""
    prediction, reference = prediction or "", reference or ""
    return {
        "exact_match": exact_match(prediction, reference),
        "rouge_l": rouge_l(prediction, reference),
        "bleu": bleu(prediction, reference),
        "numeric_match": numeric_match(prediction, reference)
        if reference_number(reference) is not None
        else math.nan,
        "distinct_2": distinct_n(prediction, 2),
    }


def _prompt_text(tokenizer: Any, prompt: Any) -> str:
    """A prompt string; a list of chat messages goes through the tokenizer's chat template."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    raise KitError(f"a prompt must be a string or a list of chat messages, got {type(prompt).__name__}")


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str | list[dict[str, str]]],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    do_sample: bool = False,
    progress: bool = True,
    add_special_tokens: bool | None = None,
) -> list[str]:
    """Generate one answer per prompt in batches (greedy by default); returns only the new text, stripped.

    Pads on the left for generation and restores the tokenizer's padding side, and the model's training
    mode, afterwards. Uses Unsloth's ``for_inference`` when the model has it. With ``KIT_HEADLESS=1`` the
    progress bar becomes a plain line about every 10 % so papermill logs stay readable.
    ``add_special_tokens`` None adds them unless every prompt already starts with BOS; chat-rendered prompts
    (which hold their own special tokens) are never given more.
    """
    import torch

    if batch_size < 1:
        raise KitError(f"batch_size must be at least 1, got {batch_size}")
    texts = [_prompt_text(tokenizer, p) for p in prompts]
    if add_special_tokens is None and prompts and all(isinstance(p, list) for p in prompts):
        add_special_tokens = False
    if not texts:
        return []
    was_training = bool(getattr(model, "training", False))
    padding_side, pad_token = tokenizer.padding_side, tokenizer.pad_token
    if hasattr(model, "for_inference"):
        model.for_inference()  # Unsloth binds FastLanguageModel.for_inference(model) here
    else:
        model.eval()
    try:
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        device = getattr(model, "device", None) or next(model.parameters()).device
        batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        headless = is_headless()
        bar = None
        if progress and not headless:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="generate", unit="prompt")
        every = max(1, math.ceil(len(batches) / 10))
        started = time.perf_counter()
        answers: list[str] = []
        for index, batch in enumerate(batches):
            bos = getattr(tokenizer, "bos_token", None)
            add_special = (
                not (bos and all(t.startswith(bos) for t in batch))
                if add_special_tokens is None
                else add_special_tokens
            )
            encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=add_special).to(
                device
            )
            with torch.inference_mode():
                output = model.generate(
                    **encoded,
                    max_new_tokens=max_new_tokens,
                    do_sample=do_sample,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            # A byte-level BPE answer cut by max_new_tokens can end inside a character: drop the half (U+FFFD).
            answers.extend(t.strip().rstrip("\ufffd").strip()
                           for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
            if bar is not None:
                bar.update(len(batch))
            elif progress and headless and ((index + 1) % every == 0 or index + 1 == len(batches)):
                elapsed = time.perf_counter() - started
                print(
                    f"[generate] {len(answers)}/{len(texts)} prompts, batch {index + 1}/{len(batches)}, {elapsed:.1f}s"
                )
        if bar is not None:
            bar.close()
        return answers
    finally:
        if was_training:
            if hasattr(model, "for_training"):
                model.for_training()
            else:
                model.train()
        tokenizer.padding_side, tokenizer.pad_token = padding_side, pad_token


def _records_list(records: Any) -> list[dict[str, Any]]:
    """A list of dicts from a list of dicts, a datasets.Dataset or a pandas DataFrame."""
    if hasattr(records, "to_dict") and hasattr(records, "columns") and hasattr(records, "iloc"):
        return records.to_dict("records")
    return [dict(r) for r in records]


def evaluate_generations(
    model: Any,
    tokenizer: Any,
    records: Iterable[dict[str, Any]] | Any,
    *,
    prompt_fn: Callable[[dict[str, Any]], Any] | str,
    reference_key: str = "output",
    max_new_tokens: int = 64,
    label: str = "model",
    batch_size: int = 8,
    progress: bool = True,
    add_special_tokens: bool | None = None,
) -> Any:
    """Generate for every held-out record and score it; returns a DataFrame (one row per record).

    Columns: ``idx, label, prompt, reference, prediction`` and the metrics in ``METRICS``. ``prompt_fn``
    turns a record into a prompt string or chat messages (a string picks that key of the record).
    """
    import pandas as pd

    rows = _records_list(records)
    if not rows:
        raise KitError(
            "evaluate_generations got no records; pass the held-out split (a list of dicts or a Dataset)"
        )
    make_prompt = (lambda r: r[prompt_fn]) if isinstance(prompt_fn, str) else prompt_fn
    prompts, references = [], []
    for index, record in enumerate(rows):
        if reference_key not in record:
            raise KitError(
                f"record {index} has no {reference_key!r} field (keys: {sorted(record)}); "
                "set reference_key= to the column that holds the expected answer"
            )
        prompts.append(make_prompt(record))
        references.append("" if record[reference_key] is None else str(record[reference_key]))
    predictions = generate_answers(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress,
        add_special_tokens=add_special_tokens,
    )
    table = []
    for index, (prompt, reference, prediction) in enumerate(
        zip(prompts, references, predictions, strict=True)
    ):
        shown = prompt if isinstance(prompt, str) else _prompt_text(tokenizer, prompt)
        row = {
            "idx": index,
            "label": label,
            "prompt": shown,
            "reference": reference,
            "prediction": prediction,
        }
        row.update(score(prediction, reference))
        table.append(row)
    frame = pd.DataFrame(table)
    frame.attrs["label"] = label
    return frame


def summarize(df: Any) -> dict[str, Any]:
    """Mean of each metric (None when a metric has no scorable row), the row count and the label."""
    summary: dict[str, Any] = {
        "label": df.attrs.get("label") or (df["label"].iloc[0] if len(df) else "model")
    }
    summary["n"] = len(df)
    for metric in METRICS:
        if metric in df:
            mean = df[metric].mean(skipna=True)
            summary[metric] = None if mean != mean else round(float(mean), 4)  # NaN -> None
    if "prediction" in df:
        summary["empty_predictions"] = int((df["prediction"].fillna("").str.strip() == "").sum())
    return summary


def compare(before_df: Any, after_df: Any) -> Any:
    """Join two runs on the same questions: ``<metric>_before``, ``<metric>_after`` and ``<metric>_delta``."""
    key = "idx" if "idx" in before_df and "idx" in after_df else None
    if key is None:
        raise KitError("compare needs two tables from evaluate_generations (they carry an 'idx' column)")
    merged = before_df.merge(after_df, on=key, suffixes=("_before", "_after"), how="inner")
    if merged.empty:
        raise KitError("the two runs share no questions; evaluate both models on the same held-out records")
    mismatched = merged[merged["reference_before"] != merged["reference_after"]]
    if len(mismatched):
        first = int(mismatched[key].iloc[0])
        raise KitError(
            f"the runs disagree on the reference of question {first}: evaluate both on the same split"
        )
    out = merged[[key, "prompt_before", "reference_before", "prediction_before", "prediction_after"]].rename(
        columns={"prompt_before": "prompt", "reference_before": "reference"}
    )
    if "prompt_after" in merged and (merged["prompt_after"] != merged["prompt_before"]).any():
        out["prompt_after"] = merged["prompt_after"]
    for metric in METRICS:
        if f"{metric}_before" in merged and f"{metric}_after" in merged:
            out[f"{metric}_before"] = merged[f"{metric}_before"]
            out[f"{metric}_after"] = merged[f"{metric}_after"]
            out[f"{metric}_delta"] = merged[f"{metric}_after"] - merged[f"{metric}_before"]
    return out.reset_index(drop=True)


def plot_comparison(
    summary_before: dict[str, Any], summary_after: dict[str, Any], path: str | os.PathLike[str] | None = None
) -> Any:
    """Grouped bar chart of the mean metrics of two runs (:func:`kit.plots.plot_before_after`): saved to
    ``path`` if given, shown inline in a notebook, and returned. Labels come from the summaries (e.g. 微调前)."""
    from kit.plots import plot_before_after

    metrics = [
        m
        for m in METRICS
        if isinstance(summary_before.get(m), (int, float)) and isinstance(summary_after.get(m), (int, float))
    ]
    if not metrics:
        raise KitError("the summaries share no metric to plot; pass the dicts returned by summarize()")
    labels = (str(summary_before.get("label") or "before"), str(summary_after.get("label") or "after"))
    if labels[0] == labels[1]:
        labels = (f"{labels[0]} (before)", f"{labels[1]} (after)")
    return plot_before_after(
        metrics,
        [float(summary_before[m]) for m in metrics],
        [float(summary_after[m]) for m in metrics],
        labels=labels,
        title=f"{labels[0]} vs {labels[1]} (n={summary_after.get('n', '?')})",
        path=path,
    )


EVAL_SET_FILE = "eval_set.jsonl"


def save_eval_set(output_dir: str | os.PathLike[str], prompts: Sequence[str], references: Sequence[str]) -> Path:
    """Write held-out ``prompt``/``reference`` pairs next to an adapter, so any later notebook can evaluate
    that adapter on exactly the questions it never saw (UTF-8 JSONL, Chinese kept as is)."""
    import json

    if len(prompts) != len(references):
        raise KitError(f"save_eval_set: {len(prompts)} prompts but {len(references)} references; pass one each")
    path = Path(output_dir) / EVAL_SET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for prompt, reference in zip(prompts, references):
            handle.write(json.dumps({"prompt": prompt, "reference": reference}, ensure_ascii=False) + "\n")
    return path


def load_eval_set(folder: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Read the ``eval_set.jsonl`` that :func:`save_eval_set` wrote into ``folder``."""
    import json

    path = Path(folder) / EVAL_SET_FILE
    if not path.is_file():
        raise KitError(f"{path}: no evaluation set here; the training notebook writes it with save_eval_set()")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# --- Held-out evaluation in the training format (the notebooks' before/after "eval" block) -------------------


def sft_eval(
    model: Any,
    tokenizer: Any,
    records: Any,
    template: str = "auto",
    *,
    style: str = "alpaca",
    fallback: str | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    label: str = "model",
    progress: bool = True,
) -> Any:
    """Greedy answers to held-out records, prompted exactly as training formatted them, scored per item.

    The prompt is :func:`kit.formatting.chat_format.generation_prompt` (the chat template with the generation cue, or
    the text template); the reference is the record's ``output`` (a conversation's final assistant turn).
    Returns the :func:`evaluate_generations` table; two of them give the block via
    :func:`kit.evaluation.block.table_block`.
    """
    from kit.formatting.chat_format import (
        default_fallback,
        generation_prompt,
        reference_answer,
        resolve_template,
    )

    rows = _records_list(records)
    chat = resolve_template(tokenizer, template, fallback=fallback or default_fallback(style)) == "chat"
    items = [
        {"prompt": generation_prompt(tokenizer, r, template, style=style, fallback=fallback),
         "reference": reference_answer(r)}
        for r in rows
    ]
    return evaluate_generations(
        model, tokenizer, items, prompt_fn="prompt", reference_key="reference", max_new_tokens=max_new_tokens,
        label=label, batch_size=batch_size, progress=progress, add_special_tokens=False if chat else None,
    )


GRPO_METRICS = ("accuracy", "format_rate")


def grpo_scores(completions: Sequence[Any], answers: Sequence[Any], answer_format: Any = "zh") -> dict[str, list[float]]:
    """Per-completion ``accuracy`` and ``format_rate`` (1.0 or 0.0), judged by the GRPO rewards' own rules.

    ``accuracy``: the final answer is right, i.e. the correctness reward is above 0 (the number in the
    format's place, or the last number when the marker is absent). ``format_rate``: the format's parts
    appear in order (the soft-format reward's rule, e.g. ``<reasoning>…</reasoning>`` then ``最终答案：N``).
    """
    from kit.rewards import RewardScorer, completion_text

    if len(completions) != len(answers):
        raise KitError(f"{len(completions)} completions but {len(answers)} answers: pass one answer per completion")
    scorer = RewardScorer(answer_format)
    accuracy, formatted = [], []
    for completion, answer in zip(completions, answers, strict=True):
        text = completion_text(completion) or ""
        accuracy.append(1.0 if scorer.correctness(text, answer) > 0 else 0.0)
        formatted.append(1.0 if text and scorer.format.is_soft(text) else 0.0)
    return {"accuracy": accuracy, "format_rate": formatted}


def grpo_eval(
    model: Any,
    tokenizer: Any,
    problems: Any,
    answer_format: Any = "zh",
    *,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    label: str = "model",
    progress: bool = True,
) -> Any:
    """Greedy completions of held-out problems (``prompt`` chat messages, ``answer``) with their scores.

    Returns a DataFrame ``idx, label, prompt, answer, completion, accuracy, format_rate``; two of them give the
    block via ``kit.evaluation.block.table_block(before, after, metrics=GRPO_METRICS)``.
    """
    import pandas as pd

    rows = _records_list(problems)
    if not rows:
        raise KitError("grpo_eval got no problems; pass the held-out split of load_gsm8k")
    prompts = [r["prompt"] for r in rows]
    answers = [r["answer"] for r in rows]
    completions = generate_answers(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress
    )
    scores = grpo_scores(completions, answers, answer_format)
    frame = pd.DataFrame(
        {
            "idx": range(len(rows)),
            "label": label,
            "prompt": [_prompt_text(tokenizer, p) for p in prompts],
            "answer": [str(a) for a in answers],
            "completion": completions,
            **scores,
        }
    )
    frame.attrs["label"] = label
    return frame
