"""Benchmark the GRPO reward functions on 100k realistic completions, against a tutorial-style baseline.

Run: ``.venv/bin/python benchmarks/rewards.py [N]``. Goal: all five rewards together under 2 s per 100k
completions on one core. The baseline is the pattern many GRPO tutorials use (``re.match`` with a pattern
string on every call, ``str.split`` extraction, string equality); it is faster only because it is wrong on
``1,080``, ``18.0``, ``最终答案：１８`` and chat-message lists.
"""

from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kit.rewards import DEFAULT_REWARDS

_STEPS = [
    "小明有{a}个苹果，又买了{b}个，所以一共有{a}+{b}={s}个。",
    "Each box holds {a} items and there are {b} boxes, so {a}*{b}={p} items in total.",
    "先算每天的花费：{a}×{b}={p}元，再减去优惠{c}元。",
    "She spends ${a} on Monday and ${b} on Tuesday, which is ${s} altogether.",
]


def _reasoning(rng: random.Random, target_chars: int = 300) -> str:
    parts: list[str] = []
    while sum(len(p) for p in parts) < target_chars:
        a, b, c = rng.randint(2, 999), rng.randint(2, 99), rng.randint(1, 50)
        parts.append(rng.choice(_STEPS).format(a=a, b=b, c=c, s=a + b, p=a * b))
    return "\n".join(parts)


def build_completions(n: int, seed: int = 3407) -> tuple[list, list[str]]:
    """``n`` completions in a realistic mix, with their GSM8K-style references (``#### N``)."""
    rng = random.Random(seed)
    completions: list = []
    answers: list[str] = []
    for i in range(n):
        if i % 6 == 0:  # TRL repeats each prompt's reference for its num_generations completions (6 here)
            value = rng.randint(-50, 200_000)
            reference = f"{_reasoning(rng, 80)}\n#### {value:,}"
        shown = value if rng.random() < 0.6 else value + rng.randint(1, 9)
        reasoning = _reasoning(rng, rng.choice((120, 300, 300, 600)))
        kind = rng.random()
        if kind < 0.35:  # exactly the format
            text = f"<reasoning>\n{reasoning}\n</reasoning>\n最终答案：{shown}"
        elif kind < 0.50:  # full-width colon and digits, thousands separators, trailing text
            text = f"<reasoning>{reasoning}</reasoning>\n\n最终答案: {shown:,}。\n希望对你有帮助！"
        elif kind < 0.65:  # chat-message list (conversational prompts)
            text = [
                {"role": "assistant", "content": f"<reasoning>\n{reasoning}\n</reasoning>\n最终答案：{shown}"}
            ]
        elif kind < 0.80:  # no format: real-world endings
            ending = rng.choice(("A: {v}", "The answer is {v}.", "{v}.0", "So the total is ${v:,}."))
            text = f"{reasoning}\n" + ending.format(v=shown)
        elif kind < 0.90:  # truncated mid-reasoning
            text = "<reasoning>\n" + reasoning[: rng.randint(10, len(reasoning))]
        elif kind < 0.97:  # another format entirely
            text = f"<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{shown}\n</answer>\n"
        else:  # garbage
            text = rng.choice(
                (None, "", 42, [[1, 2]], {"content": None}, "最终答案：", "<reasoning></reasoning>")
            )
        completions.append(text)
        answers.append(reference)
    return completions, answers


# --- the tutorial-style baseline ------------------------------------------------------------------------


def _base_extract(text: str) -> str:
    return text.split("最终答案：")[-1].strip()


def _base_text(completion) -> str:
    return completion[0]["content"] if isinstance(completion, list) else completion


def base_correctness(prompts, completions, answer, **kwargs):
    out = []
    for c, a in zip(completions, answer):
        try:
            out.append(1.0 if _base_extract(_base_text(c)) == a.split("####")[-1].strip() else 0.0)
        except Exception:
            out.append(0.0)
    return out


def base_strict(prompts, completions, **kwargs):
    out = []
    for c in completions:
        try:
            out.append(
                0.5
                if re.match(r"^<reasoning>\n.*?\n</reasoning>\n最终答案：.*$", _base_text(c), re.S)
                else 0.0
            )
        except Exception:
            out.append(0.0)
    return out


def base_soft(prompts, completions, **kwargs):
    out = []
    for c in completions:
        try:
            out.append(
                0.5 if re.search(r"<reasoning>.*?</reasoning>\s*最终答案", _base_text(c), re.S) else 0.0
            )
        except Exception:
            out.append(0.0)
    return out


def base_count(prompts, completions, **kwargs):
    out = []
    for c in completions:
        try:
            t = _base_text(c)
            score = 0.0
            score += 0.5 / 3 if t.count("<reasoning>") == 1 else 0.0
            score += 0.5 / 3 if t.count("</reasoning>") == 1 else 0.0
            score += 0.5 / 3 if t.count("最终答案") == 1 else 0.0
            out.append(score)
        except Exception:
            out.append(0.0)
    return out


def base_int(prompts, completions, **kwargs):
    out = []
    for c in completions:
        try:
            out.append(0.5 if _base_extract(_base_text(c)).isdigit() else 0.0)
        except Exception:
            out.append(0.0)
    return out


BASELINE = (base_correctness, base_strict, base_soft, base_count, base_int)


def _time(funcs, completions, answers) -> tuple[dict[str, float], float]:
    prompts = [None] * len(completions)
    per: dict[str, float] = {}
    for fn in funcs:
        start = time.perf_counter()
        scores = fn(prompts=prompts, completions=completions, answer=answers)
        per[fn.__name__] = time.perf_counter() - start
        assert len(scores) == len(completions)
    return per, sum(per.values())


def main(n: int = 100_000) -> float:
    """Build ``n`` completions, time ours and the baseline, print completions/s; return our total seconds."""
    completions, answers = build_completions(n)
    print(f"{n:,} completions (formatted, full-width/thousands, chat lists, unformatted, truncated, garbage)")
    best_ours: dict[str, float] = {}
    best_base: dict[str, float] = {}
    cold = 0.0
    for run in range(3):  # best of 3; the first run starts with empty number caches
        ours, ours_total = _time(DEFAULT_REWARDS, completions, answers)
        base, _ = _time(BASELINE, completions, answers)
        cold = ours_total if run == 0 else cold
        best_ours = {k: min(v, best_ours.get(k, v)) for k, v in ours.items()}
        best_base = {k: min(v, best_base.get(k, v)) for k, v in base.items()}
    print(f"{'function':<22} {'ours/s':>12} {'baseline/s':>12}")
    for (name, sec), bsec in zip(best_ours.items(), best_base.values()):
        print(f"{name:<22} {n / sec:>12,.0f} {n / bsec:>12,.0f}")
    total, base_total = sum(best_ours.values()), sum(best_base.values())
    print(
        f"all five together: ours {total:.3f} s, baseline {base_total:.3f} s "
        f"(ours/baseline = {total / base_total:.2f}x)"
    )
    print(f"first (cold-cache) run of ours: {cold:.3f} s")
    ours_right = DEFAULT_REWARDS[0](None, completions, answer=answers)
    base_right = base_correctness(None, completions, answer=answers)
    missed = sum(1 for a, b in zip(ours_right, base_right) if a == 1.0 and b == 0.0)
    print(
        f"right answers in the asked format that the baseline scores 0: {missed:,} of {n:,} ({missed / n:.1%})"
    )
    print(
        f"per 100k: {total * 100_000 / n:.3f} s (goal < 2 s): "
        f"{'met' if total * 100_000 / n < 2 else 'MISSED'}"
    )
    return total


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
