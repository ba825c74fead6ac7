"""The parity gate (``kit parity``, notebook 05): do the exports answer like the adapter they came from?

One adapter and its held-out ``eval_set.jsonl``: the same prompts, with the same greedy decoding, go to the adapter
on its base (the reference), the merged 16-bit model and each GGUF (run by llama.cpp itself,
:mod:`kit.export.gguf_runtime`). Against the reference each export gets ROUGE-L with a paired 95% bootstrap interval of
the difference, the share of identical answers, first-token agreement and the mean next-token KL divergence at
the prompts' end. The ``Modelfile`` of each GGUF is checked too: its TEMPLATE, filled with each held-out
conversation as Ollama fills it, must give the prompt ``tokenizer.apply_chat_template`` gives, byte for byte, and
its stops must hold the tokenizer's EOS. Bounds (:data:`BOUNDS`): merged and f16 within 0.02 ROUGE-L with an
interval holding 0, q8_0 within 0.03; q4_k_m is reported only. Writes ``parity.json`` and prints a table; every
broken promise is one line in ``report["problems"]`` (``kit parity`` exits 1).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit.errors import KitError, RunFailed

PARITY_FILE = "parity.json"
REFERENCE = "adapter"
MERGED = "merged_16bit"
# Largest |ROUGE-L difference| to the adapter, and whether the 95% interval must hold 0; None: reported only.
BOUNDS: dict[str, tuple[float, bool] | None] = {MERGED: (0.02, True), "f16": (0.02, True), "q8_0": (0.03, False),
                                                "q4_k_m": None}
DIGITS = 4


def _clean(text: str) -> str:
    """An answer as :func:`kit.evaluation.scoring.generate_answers` returns it: stripped, a cut character dropped."""
    return text.strip().rstrip("\ufffd").strip()


def hf_answers(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int) -> dict[str, Any]:
    """Greedy answers and next-token log-probabilities at each prompt's end, from a transformers/PEFT model."""
    import numpy as np
    import torch

    from kit.evaluation.scoring import generate_answers

    started = time.perf_counter()
    texts = generate_answers(model, tokenizer, list(prompts), max_new_tokens=max_new_tokens, progress=False,
                             add_special_tokens=False)
    rows = []
    device = getattr(model, "device", None) or next(model.parameters()).device
    with torch.inference_mode():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
            logits = model(**ids).logits[0, -1].float()
            rows.append(torch.log_softmax(logits, -1).cpu().numpy())
    return {"texts": texts, "logprobs": np.stack(rows), "seconds": round(time.perf_counter() - started, 1)}


def gguf_answers(gguf_file: str | Path, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int) -> dict[str, Any]:
    """The same from a GGUF in llama.cpp; answers decoded with the model's tokenizer, as the adapter's are."""
    from kit.export.gguf_runtime import run_gguf

    stops = {i for i in (tokenizer.eos_token_id,) if i is not None}
    run = run_gguf(gguf_file, prompts, max_new_tokens=max_new_tokens, stop_ids=sorted(stops))
    hf_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    same = sum(a == b for a, b in zip(hf_ids, run["prompt_ids"]))
    texts = [_clean(tokenizer.decode(ids, skip_special_tokens=True)) for ids in run["answer_ids"]]
    return {"texts": texts, "logprobs": run["logprobs"], "seconds": run["seconds"],
            "prompt_tokens_match": round(same / max(1, len(prompts)), DIGITS)}


def compare(reference: dict[str, Any], other: dict[str, Any], references: Sequence[str]) -> dict[str, Any]:
    """One export's row against the reference: ROUGE-L with the paired 95% CI of the difference, identical
    answers, first-token agreement and mean KL(reference || export) of the next-token distribution."""
    import numpy as np

    from kit.evaluation.block import paired_bootstrap
    from kit.evaluation.scoring import rouge_l

    ref_scores = [rouge_l(a, r) for a, r in zip(reference["texts"], references)]
    scores = [rouge_l(a, r) for a, r in zip(other["texts"], references)]
    gain = paired_bootstrap(ref_scores, scores)
    row: dict[str, Any] = {
        "rouge_l": {"value": round(float(np.mean(scores)), DIGITS), "delta": gain["value"], "ci95": gain["ci95"]},
        "identical": round(float(np.mean([a == b for a, b in zip(reference["texts"], other["texts"])])), DIGITS),
        "first_token_agreement": None, "kl": None,
    }
    p, q = reference.get("logprobs"), other.get("logprobs")
    if p is not None and q is not None and len(p) == len(q) and len(p):
        width = min(p.shape[1], q.shape[1])  # a converter may pad the vocabulary
        p, q = p[:, :width].astype(np.float64), q[:, :width].astype(np.float64)
        row["first_token_agreement"] = round(float(np.mean(p.argmax(1) == q.argmax(1))), DIGITS)
        row["kl"] = round(float(np.mean((np.exp(p) * (p - q)).sum(1))), 6)
    for key in ("prompt_tokens_match", "seconds"):
        if key in other:
            row[key] = other[key]
    return row


def template_check(tokenizer: Any, prompts: Sequence[str], modelfile: str) -> dict[str, Any]:
    """Fill the Modelfile's TEMPLATE with each held-out conversation as Ollama would and compare with
    ``apply_chat_template`` (and the prompt the adapter was scored on) byte for byte; check the stops hold EOS.
    ``{"ok", "checked", "problems"}``."""
    from kit.export.ollama_template import default_system, parse_modelfile, render, split_chatml

    parsed = parse_modelfile(modelfile)
    problems: list[str] = []
    eos = getattr(tokenizer, "eos_token", None)
    if eos not in parsed["stops"]:
        problems.append(f"the Modelfile's stops {parsed['stops']} do not hold the tokenizer's EOS {eos!r}: Ollama "
                        "would not stop where the model learned to")
    template = parsed["template"]
    if template is None:
        return {"ok": False, "checked": 0, "problems": [*problems, "the Modelfile has no TEMPLATE"]}
    failures: list[tuple[int, str]] = []
    checked = 0
    chat = ".Messages" in template
    default = default_system(tokenizer) if chat else None
    for index, prompt in enumerate(prompts):
        try:
            if chat:
                messages = split_chatml(prompt)
                if messages is None:
                    failures.append((index, "is not a ChatML conversation ending in the assistant cue"))
                    continue
                if messages[0]["role"] == "system" and messages[0]["content"] == default:
                    messages = messages[1:]  # the template's own default: the user never sends it
                expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                filled = render(template, messages, parsed["system"])
            else:
                cut = render(template, [{"role": "user", "content": "\x00"}], parsed["system"]).split("\x00")
                if len(cut) != 2 or not (prompt.startswith(cut[0]) and prompt.endswith(cut[1])):
                    failures.append((index, "does not fit the Modelfile's TEMPLATE around the instruction"))
                    continue
                instruction = prompt[len(cut[0]) : len(prompt) - len(cut[1])]
                expected = prompt
                filled = render(template, [{"role": "user", "content": instruction}], parsed["system"])
        except KitError as exc:
            return {"ok": False, "checked": checked, "problems": [*problems, str(exc)]}
        checked += 1
        if expected != prompt:
            failures.append((index, "renders differently with apply_chat_template than in eval_set.jsonl"))
        elif filled != expected:
            at = next((i for i, (a, b) in enumerate(zip(filled, expected)) if a != b), min(len(filled), len(expected)))
            failures.append((index, f"differs from apply_chat_template at character {at}: Ollama "
                                    f"{filled[max(0, at - 15) : at + 25]!r} vs {expected[max(0, at - 15) : at + 25]!r}"))
    if failures:
        index, why = failures[0]
        problems.append(f"the Modelfile TEMPLATE filled with held-out conversation {index} {why}"
                        + (f" ({len(failures)} of {len(prompts)} conversations differ)" if len(failures) > 1 else ""))
    return {"ok": not problems, "checked": checked, "problems": problems}


def gate(formats: dict[str, dict[str, Any]]) -> list[str]:
    """One line per export beyond its bound (:data:`BOUNDS`)."""
    problems = []
    for name, row in formats.items():
        bound = BOUNDS.get(name)
        if bound is None or "rouge_l" not in row:
            continue
        limit, need_zero = bound
        delta, (lo, hi) = row["rouge_l"]["delta"], row["rouge_l"]["ci95"]
        if delta is None:
            problems.append(f"{name}: no ROUGE-L difference to the adapter could be computed")
        elif abs(delta) > limit:
            problems.append(f"{name}: ROUGE-L {delta:+.4f} vs the adapter, beyond the bound of ±{limit}")
        elif need_zero and not (lo <= 0 <= hi):
            problems.append(f"{name}: the 95% interval of the ROUGE-L difference [{lo:+.4f}, {hi:+.4f}] excludes 0")
    return problems


def table(report: dict[str, Any]) -> str:
    """The short text table of a parity report."""
    lines = [f"parity vs the adapter on {report['n']} held-out prompts "
             f"(greedy, {report.get('max_new_tokens')} new tokens):",
             f"{'format':<13}{'ROUGE-L':>9}{'delta':>9}  {'95% CI':<19}{'identical':>10}{'1st tok':>9}{'KL':>10}"
             f"  bound"]
    ref = report.get("adapter_rouge_l")
    lines.append(f"{REFERENCE:<13}{ref if ref is not None else float('nan'):>9.4f}")
    for name, row in report["formats"].items():
        if "rouge_l" not in row:
            lines.append(f"{name:<13}  skipped: {row.get('skipped', '')}")
            continue
        r = row["rouge_l"]
        ci = f"[{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}]" if r["ci95"][0] is not None else "-"
        bound = BOUNDS.get(name)
        first, kl = row["first_token_agreement"], row["kl"]
        lines.append(f"{name:<13}{r['value']:>9.4f}{r['delta']:>+9.4f}  {ci:<19}{row['identical']:>10.0%}"
                     f"{first if first is None else format(first, '.0%'):>9}"
                     f"{kl if kl is None else format(kl, '.5f'):>10}  "
                     + ("reported" if bound is None else f"±{bound[0]}" + (", CI holds 0" if bound[1] else "")))
    t = report["template"]
    lines.append(f"template: {'ok' if t['ok'] else 'BROKEN'} ({t['checked']} conversations checked); "
                 f"{'passed' if report['passed'] else 'FAILED'}")
    return "\n".join(lines)


def run_parity(adapter_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, n: int = 24,
               max_new_tokens: int = 48, formats: Sequence[str] = ("f16", "q8_0", "q4_k_m"), gguf: bool = True,
               dtype: str | None = "float32", max_seq_length: int = 2048, template: str | None = None) -> dict[str, Any]:
    """Score the adapter, its merge and its GGUF exports on the held-out prompts; write ``out_dir/parity.json``.

    ``dtype`` is what the adapter and the merge compute in: float32 by default, since llama.cpp accumulates in
    float32 and bf16 compute alone flipped a third of the adapter's greedy answers against its own merge
    (SmolLM2, 24 prompts x 48 tokens), which would measure rounding instead of the export.

    ``template`` names the kit text template an Alpaca-style adapter was trained with (None: the chat template).
    Returns the report; ``report["problems"]`` lists every broken promise (empty when ``passed``).
    """
    import gc

    from kit.evaluation.scoring import load_eval_set
    from kit.export.save import export_gguf, save_merged_16bit
    from kit.training.model import load_model

    started = time.perf_counter()
    items = load_eval_set(adapter_dir)[:n]
    if not items:
        raise KitError(f"{adapter_dir}: eval_set.jsonl is empty; the training notebook writes it with save_eval_set()")
    prompts, references = [r["prompt"] for r in items], [r["reference"] for r in items]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_model(str(adapter_dir), max_seq_length=max_seq_length, load_in_4bit=False, dtype=dtype)
    reference = hf_answers(model, tokenizer, prompts, max_new_tokens)
    merged_dir = save_merged_16bit(model, tokenizer, out / MERGED)
    merged_model, _ = load_model(str(merged_dir), max_seq_length=max_seq_length, load_in_4bit=False, dtype=dtype)
    rows = {MERGED: compare(reference, hf_answers(merged_model, tokenizer, prompts, max_new_tokens), references)}
    del merged_model
    gc.collect()
    problems: list[str] = []
    template_report: dict[str, Any] = {"ok": True, "checked": 0}
    if gguf:
        files = export_gguf(merged_dir, out / "gguf", tokenizer, tuple(formats), model=model, template=template)
        del model
        gc.collect()
        checks = []
        for name, path in files.items():
            answers = gguf_answers(path, tokenizer, prompts, max_new_tokens)
            rows[name] = compare(reference, answers, references)
            if answers["prompt_tokens_match"] < 1:
                problems.append(f"{name}: llama.cpp tokenizes {1 - answers['prompt_tokens_match']:.0%} of the prompts "
                                "differently from the model's tokenizer")
            checks.append(template_check(tokenizer, prompts, (path.parent / "Modelfile").read_text(encoding="utf-8")))
        template_report = {"ok": all(c["ok"] for c in checks), "checked": min((c["checked"] for c in checks), default=0)}
        for line in dict.fromkeys(p for c in checks for p in c["problems"]):
            problems.append(f"template: {line}")
    else:
        rows.update({name: {"skipped": "GGUF not asked for (gguf=False)"} for name in formats})
    from kit.evaluation.scoring import rouge_l

    problems = gate(rows) + problems
    report = {"reference": REFERENCE, "n": len(prompts), "formats": rows, "template": template_report,
              "passed": not problems, "problems": problems, "max_new_tokens": max_new_tokens,
              "adapter_rouge_l": round(sum(rouge_l(a, r) for a, r in zip(reference["texts"], references))
                                       / len(prompts), DIGITS),
              "adapter_seconds": reference["seconds"], "seconds": round(time.perf_counter() - started, 1)}
    (out / PARITY_FILE).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kit parity``."""
    p = subparsers.add_parser("parity", help="score an adapter's merged and GGUF exports against it on its held-out set")
    p.add_argument("adapter", help="adapter folder holding eval_set.jsonl (what notebooks 01/02 write)")
    p.add_argument("--out", default=None, help="where the merge, the GGUF files and parity.json go "
                                               "(default ADAPTER/parity)")
    p.add_argument("-n", "--samples", type=int, default=24, help="held-out prompts scored (default 24)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="greedy tokens per answer (default 48)")
    p.add_argument("--formats", default="f16,q8_0,q4_k_m", help="GGUF formats (default f16,q8_0,q4_k_m)")
    p.add_argument("--no-gguf", action="store_true", help="merged model only")
    p.add_argument("--dtype", default="float32", help="compute dtype of the adapter and the merge (default float32)")
    p.add_argument("--template", default=None, help="the kit text template an Alpaca-style adapter was trained "
                                                    "with (default: the chat template)")
    p.set_defaults(handler=_cli)


def _cli(args: argparse.Namespace) -> int:
    out = args.out or os.path.join(args.adapter, "parity")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    report = run_parity(args.adapter, out, n=args.samples, max_new_tokens=args.max_new_tokens, formats=formats,
                        gguf=not args.no_gguf, dtype=args.dtype, template=args.template)
    print(table(report))
    print(f"wrote {Path(out) / PARITY_FILE} in {report['seconds']:.0f} s")
    for line in report["problems"]:
        print(f"parity: {line}")
    if report["problems"]:
        raise RunFailed(f"{len(report['problems'])} parity promise(s) broken (listed above)")
    return 0
