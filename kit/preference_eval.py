"""DPO on held-out pairs: sequence log-probabilities of chosen and rejected answers, and the before/after block.

Definition (one statistic for both sides, so before and after compare like with like): for a model M and a
pair, ``margin_M = beta * (logp_M(chosen) - logp_M(rejected))``, where ``logp`` is the summed (not
length-normalised, as DPO's loss uses it) log-probability of the answer's tokens after the prompt, tokenized as
DPOTrainer tokenizes them (chat template with the generation cue where the pair is conversational).

- ``reward_accuracy``: share of pairs with ``margin_M > 0`` (the model prefers the chosen answer);
- ``reward_margin``: mean ``margin_M``.

"before" is the reference model (M = the base, the adapter disabled), "after" the trained policy. The paired
gain of ``reward_margin`` is then exactly DPO's implicit reward margin on held-out pairs,
``beta * ((logp_pol(c) - logp_ref(c)) - (logp_pol(r) - logp_ref(r)))`` (TRL's ``rewards/margins``); the
block's ``implicit`` entry adds TRL's ``rewards/accuracies`` (share of pairs whose implicit margin is > 0).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kit.errors import KitError

DPO_METRICS = ("reward_accuracy", "reward_margin")


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


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
    cut = min(_common_prefix(p, pc), _common_prefix(p, pr))
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
    return logps[0::2], logps[1::2]


@contextlib.contextmanager
def reference_of(model: Any) -> Iterator[None]:
    """The reference model inside the block: a PEFT model with its adapter disabled."""
    if not hasattr(model, "disable_adapter"):
        raise KitError("the DPO evaluation needs a PEFT (LoRA) model: its reference is the model with the adapter off")
    with model.disable_adapter():
        yield


def preference_scores(chosen: Sequence[float], rejected: Sequence[float], beta: float) -> dict[str, list[float]]:
    """Per-pair ``reward_accuracy`` (1.0 when ``margin > 0``) and ``reward_margin`` = beta * (chosen - rejected)."""
    margins = [beta * (c - r) for c, r in zip(chosen, rejected, strict=True)]
    return {"reward_accuracy": [1.0 if m > 0 else 0.0 for m in margins], "reward_margin": margins}


def dpo_eval_block(
    model: Any,
    tokenizer: Any,
    pairs: Any,
    *,
    beta: float = 0.1,
    batch_size: int = 8,
    max_length: int | None = None,
    reference_logps: tuple[list[float], list[float]] | None = None,
    **block_kw: Any,
) -> dict[str, Any]:
    """The ``"eval"`` block of a DPO run on held-out ``pairs`` (see the module docstring for the definition).

    The reference log-probs are computed with the adapter disabled, unless ``reference_logps`` (from
    :func:`sequence_logps` under :func:`reference_of`, e.g. before training) is given.
    """
    from kit.eval_block import eval_block

    rows = [dict(p) for p in pairs]
    if not rows:
        raise KitError("dpo_eval_block got no pairs: pass the held-out split (kit.eval_block.eval_subset)")
    if reference_logps is None:
        with reference_of(model):
            reference_logps = sequence_logps(model, tokenizer, rows, batch_size=batch_size, max_length=max_length)
    policy = sequence_logps(model, tokenizer, rows, batch_size=batch_size, max_length=max_length)
    before = preference_scores(*reference_logps, beta)
    after = preference_scores(*policy, beta)
    implicit = [a - b for a, b in zip(after["reward_margin"], before["reward_margin"], strict=True)]
    extra = {
        "beta": beta,
        "implicit": {
            "reward_accuracy": round(sum(m > 0 for m in implicit) / len(implicit), 4),
            "reward_margin": round(sum(implicit) / len(implicit), 4),
        },
    }
    return eval_block(before, after, **{**extra, **block_kw})


def pairs_over_length(tokenizer: Any, pairs: Any, max_length: int | None) -> int:
    """How many pairs (as :func:`kit.chat_format.dpo_dataset` gives them) are longer than ``max_length`` tokens
    with their longer answer: DPOTrainer cuts those, so their ends (EOS included) are not trained."""
    if not max_length:
        return 0
    count = 0
    for pair in pairs:
        prompt, chosen, rejected = pair_tokens(tokenizer, pair)
        count += len(prompt) + max(len(chosen), len(rejected)) > max_length
    return count
