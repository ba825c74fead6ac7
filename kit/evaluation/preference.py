"""DPO on held-out pairs: sequence log-probabilities of chosen and rejected answers, and the before/after block.

Definition (one statistic for both sides, so before and after compare like with like): for a model M and a
pair, ``margin_M = beta * (logp_M(chosen) - logp_M(rejected))``, where ``logp`` is the summed (not
length-normalised, as DPO's loss uses it) log-probability of the answer's tokens after the prompt, tokenized as
DPOTrainer tokenizes them (chat template with the generation cue where the pair is conversational).

- ``reward_accuracy``: share of pairs with ``margin_M > 0`` (the model prefers the chosen answer);
- ``reward_margin``: mean ``margin_M``;
- ``norm_accuracy`` / ``norm_margin``: the same with the length-normalised preference
  ``norm_M = logp_M(chosen)/len(chosen) - logp_M(rejected)/len(rejected)`` (mean per-token log-probability, no
  beta). Summed log-probabilities favour the shorter answer; the per-token ones do not, so a gain that shows in
  ``reward_margin`` but not in ``norm_margin`` may be length rather than preference.

"before" is the reference model (M = the base, the adapter disabled), "after" the trained policy. The paired
gain of ``reward_margin`` is then exactly DPO's implicit reward margin on held-out pairs,
``beta * ((logp_pol(c) - logp_ref(c)) - (logp_pol(r) - logp_ref(r)))`` (TRL's ``rewards/margins``); the
block's ``implicit`` entry adds TRL's ``rewards/accuracies`` (share of pairs whose implicit margin is > 0).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kit.errors import KitError
from kit.formatting.checks import common_prefix

DPO_METRICS = ("reward_accuracy", "reward_margin", "norm_accuracy", "norm_margin")


def _encode(tokenizer: Any, value: Any, *, generation: bool = False) -> list[int]:
    """Token ids the way DPOTrainer makes them: the chat template for messages, the tokenizer for text."""
    if isinstance(value, str):
        return list(tokenizer(text=value)["input_ids"])
    out = tokenizer.apply_chat_template(list(value), tokenize=True, return_dict=True, add_generation_prompt=generation)
    ids = out["input_ids"]
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)


def pair_tokens(tokenizer: Any, pair: Mapping[str, Any]) -> tuple[list[int], list[int], list[int]]:
    """``(prompt_ids, chosen_ids, rejected_ids)`` of one pair, split where DPOTrainer splits them.

    Plain-string pairs get EOS appended to the answers (as DPOTrainer does); conversational pairs are
    rendered as prompt + answer message, the answer starting where the prompt with the generation cue ends.
    """
    prompt, chosen, rejected = pair["prompt"], pair["chosen"], pair["rejected"]
    if isinstance(prompt, str):
        eos = tokenizer.eos_token or ""
        chosen = chosen if chosen.endswith(eos) else chosen + eos
        rejected = rejected if rejected.endswith(eos) else rejected + eos
        p, pc, pr = _encode(tokenizer, prompt), _encode(tokenizer, prompt + chosen), _encode(tokenizer, prompt + rejected)
    else:
        p = _encode(tokenizer, prompt, generation=True)
        pc, pr = _encode(tokenizer, list(prompt) + list(chosen)), _encode(tokenizer, list(prompt) + list(rejected))
    cut = min(common_prefix(p, pc), common_prefix(p, pr))
    return p[:cut], pc[cut:], pr[cut:]


def _batches(sequences: list[tuple[list[int], int]], size: int) -> Iterator[list[tuple[list[int], int]]]:
    for start in range(0, len(sequences), size):
        yield sequences[start : start + size]


def sequence_logps(
    model: Any, tokenizer: Any, pairs: Sequence[Mapping[str, Any]], *, batch_size: int = 8, max_length: int | None = None
) -> tuple[list[float], list[float]]:
    """Summed log-probabilities of each pair's chosen and rejected answer given its prompt, under ``model``.

    Sequences longer than ``max_length`` are cut at the end (as DPOTrainer's keep_start truncation does).
    """
    stats = sequence_stats(model, tokenizer, pairs, batch_size=batch_size, max_length=max_length)
    return stats["chosen"], stats["rejected"]


def sequence_stats(
    model: Any, tokenizer: Any, pairs: Sequence[Mapping[str, Any]], *, batch_size: int = 8, max_length: int | None = None
) -> dict[str, list[float]]:
    """``{"chosen", "rejected"}`` summed answer log-probabilities and ``{"chosen_n", "rejected_n"}`` answer token
    counts (after any ``max_length`` cut) of each pair under ``model``: what every DPO statistic here is made of."""
    import torch

    sequences: list[tuple[list[int], int]] = []
    for pair in pairs:
        prompt, chosen, rejected = pair_tokens(tokenizer, pair)
        for answer in (chosen, rejected):
            ids = (prompt + answer)[:max_length] if max_length else prompt + answer
            sequences.append((ids, min(len(prompt), len(ids))))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    device = getattr(model, "device", None) or next(model.parameters()).device
    was_training = bool(getattr(model, "training", False))
    model.eval()
    logps: list[float] = []
    counts = [float(max(0, len(ids) - start)) for ids, start in sequences]
    try:
        with torch.inference_mode():
            for batch in _batches(sequences, batch_size):
                width = max(len(ids) for ids, _ in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                answer_mask = torch.zeros((len(batch), width), dtype=torch.bool)
                for row, (ids, start) in enumerate(batch):
                    input_ids[row, : len(ids)] = torch.tensor(ids)
                    attention[row, : len(ids)] = 1
                    answer_mask[row, start : len(ids)] = True
                logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
                token_logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(
                    -1, input_ids[:, 1:].to(device).unsqueeze(-1)
                ).squeeze(-1)
                logps.extend((token_logps * answer_mask[:, 1:].to(device)).sum(dim=1).tolist())
    finally:
        if was_training:
            model.train()
    return {"chosen": logps[0::2], "rejected": logps[1::2], "chosen_n": counts[0::2], "rejected_n": counts[1::2]}


@contextlib.contextmanager
def reference_of(model: Any) -> Iterator[None]:
    """The reference model inside the block: a PEFT model with its adapter disabled."""
    if not hasattr(model, "disable_adapter"):
        raise KitError("the DPO evaluation needs a PEFT (LoRA) model: its reference is the model with the adapter off")
    with model.disable_adapter():
        yield


def preference_scores(
    chosen: Sequence[float], rejected: Sequence[float], beta: float,
    chosen_n: Sequence[float] | None = None, rejected_n: Sequence[float] | None = None,
) -> dict[str, list[float]]:
    """Per-pair ``reward_accuracy`` (1.0 when ``margin > 0``) and ``reward_margin`` = beta * (chosen - rejected);
    with token counts also ``norm_accuracy`` and ``norm_margin`` (per-token log-probabilities, no beta)."""
    margins = [beta * (c - r) for c, r in zip(chosen, rejected, strict=True)]
    scores = {"reward_accuracy": [1.0 if m > 0 else 0.0 for m in margins], "reward_margin": margins}
    if chosen_n is not None and rejected_n is not None:
        norm = [c / max(nc, 1.0) - r / max(nr, 1.0)
                for c, r, nc, nr in zip(chosen, rejected, chosen_n, rejected_n, strict=True)]
        scores.update({"norm_accuracy": [1.0 if m > 0 else 0.0 for m in norm], "norm_margin": norm})
    return scores


def _scores(stats: Mapping[str, list[float]], beta: float) -> dict[str, list[float]]:
    return preference_scores(stats["chosen"], stats["rejected"], beta, stats.get("chosen_n"), stats.get("rejected_n"))


def reference_stats(model: Any, tokenizer: Any, pairs: Any, *, batch_size: int = 8,
                    max_length: int | None = None) -> dict[str, list[float]]:
    """:func:`sequence_stats` under the reference (the adapter disabled): the "before" of a DPO run."""
    rows = [dict(p) for p in pairs]
    with reference_of(model):
        return sequence_stats(model, tokenizer, rows, batch_size=batch_size, max_length=max_length)


def dpo_evaluate(
    model: Any,
    tokenizer: Any,
    pairs: Any,
    *,
    beta: float = 0.1,
    batch_size: int = 8,
    max_length: int | None = None,
    reference: Mapping[str, list[float]] | None = None,
    **block_kw: Any,
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """The ``"eval"`` block of a DPO run and the per-pair scores behind it (``before``/``after`` dicts of lists,
    for :func:`kit.evaluation.display.show_preferences`). ``reference``: :func:`reference_stats` taken before training."""
    from kit.evaluation.block import eval_block, paired_bootstrap

    rows = [dict(p) for p in pairs]
    if not rows:
        raise KitError("dpo_eval_block got no pairs: pass the held-out split (kit.evaluation.block.eval_subset)")
    if reference is None:
        reference = reference_stats(model, tokenizer, rows, batch_size=batch_size, max_length=max_length)
    policy = sequence_stats(model, tokenizer, rows, batch_size=batch_size, max_length=max_length)
    before, after = _scores(reference, beta), _scores(policy, beta)
    implicit = [a - b for a, b in zip(after["reward_margin"], before["reward_margin"], strict=True)]
    wins = [1.0 if m > 0 else 0.0 for m in implicit]
    zeros = [0.0] * len(implicit)
    accuracy, margin = paired_bootstrap(zeros, wins), paired_bootstrap(zeros, implicit)
    extra = {
        "beta": beta,
        "implicit": {
            "reward_accuracy": round(sum(wins) / len(wins), 4),
            "reward_margin": round(sum(implicit) / len(implicit), 4),
            "reward_accuracy_ci95": accuracy["ci95"],
            "reward_margin_ci95": margin["ci95"],
        },
    }
    return eval_block(before, after, **{**extra, **block_kw}), {"before": before["reward_margin"],
                                                               "after": after["reward_margin"],
                                                               "implicit": implicit}


def dpo_eval_block(model: Any, tokenizer: Any, pairs: Any, *, reference_logps: Any = None, **kwargs: Any) -> dict:
    """The ``"eval"`` block only (see :func:`dpo_evaluate`); ``reference_logps`` may be :func:`reference_stats`."""
    if reference_logps is not None and not isinstance(reference_logps, Mapping):
        chosen, rejected = reference_logps  # summed log-probs only: count the answer tokens here
        tokenizer_counts = [pair_tokens(tokenizer, dict(p)) for p in pairs]
        cap = kwargs.get("max_length")
        reference_logps = {
            "chosen": list(chosen), "rejected": list(rejected),
            "chosen_n": [float(min(len(c), max(0, cap - len(p))) if cap else len(c)) for p, c, _ in tokenizer_counts],
            "rejected_n": [float(min(len(r), max(0, cap - len(p))) if cap else len(r)) for p, _, r in tokenizer_counts],
        }
    return dpo_evaluate(model, tokenizer, pairs, reference=reference_logps, **kwargs)[0]


def dpo_lines(block: Mapping[str, Any], lang: str = "en") -> str:
    """The DPO statistics beyond the block's table: the implicit-reward accuracy against chance (0.5) with its ci95,
    which statistic the verdict uses, and a warning when the summed and the per-token verdicts disagree."""
    from kit.evaluation.block import verdict

    implicit = block.get("implicit") or {}
    lo, hi = implicit.get("reward_accuracy_ci95") or (None, None)
    value = implicit.get("reward_accuracy")
    if value is None or lo is None:
        chance = "unclear"
    else:
        chance = "better" if lo > 0.5 else "worse" if hi < 0.5 else "unclear"
    gains = block.get("gain") or {}
    summed = verdict(gains.get("reward_margin", {}))
    per_token = verdict(gains.get("norm_margin", {})) if "norm_margin" in gains else "missing"
    lines = [f"implicit-reward accuracy (TRL's rewards/accuracies) on held-out pairs: {value:.4f} "
             f"(ci95 {lo:+.4f}..{hi:+.4f}; against chance 0.5: {chance})" if value is not None and lo is not None
             else "implicit-reward accuracy: n/a",
             f"verdict (reward_margin gain = DPO's implicit reward margin): {summed}"]
    if summed == "better" and per_token != "better":
        lines.append(f"note: the per-token preference (norm_margin) is {per_token}: part of the summed gain may be "
                     "length (summed log-probabilities favour the shorter answer)")
    return "\n".join(lines)


def pairs_over_length(tokenizer: Any, pairs: Any, max_length: int | None) -> int:
    """How many pairs (as :func:`kit.formatting.chat_format.dpo_dataset` gives them) are longer than ``max_length`` tokens
    with their longer answer: DPOTrainer cuts those, so their ends (EOS included) are not trained."""
    if not max_length:
        return 0
    count = 0
    for pair in pairs:
        prompt, chosen, rejected = pair_tokens(tokenizer, pair)
        count += len(prompt) + max(len(chosen), len(rejected)) > max_length
    return count


def stats_line(stats: Mapping[str, list[float]], beta: float, label: str = "before (reference)") -> str:
    """One line on held-out pairs under one model: both accuracies and the answers' mean token lengths, which
    show the length bias of the summed statistic (summed log-probabilities favour the shorter answer)."""
    scores = _scores(stats, beta)
    n = len(scores["reward_accuracy"])
    line = (f"{label}: reward_accuracy {sum(scores['reward_accuracy']) / n:.4f} (summed log-probs), "
            f"norm_accuracy {sum(scores.get('norm_accuracy', [math.nan])) / n:.4f} (per token) on {n} pairs")
    if stats.get("chosen_n") and stats.get("rejected_n"):
        line += (f"; answers average {sum(stats['chosen_n']) / n:.1f} tokens chosen vs "
                 f"{sum(stats['rejected_n']) / n:.1f} rejected")
    return line
