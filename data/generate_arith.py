"""Generate short arithmetic word problems (Chinese and English, graded difficulty, known answers) for GRPO on CPU.

GSM8K's problems are beyond a 135M model: its sampled answers are all wrong, so every GRPO group scores the same
and nothing is learned. These problems are one or two small steps, so a small model gets some of its samples
right and some wrong, which is the signal GRPO learns from. Each record is GSM8K-shaped (``question``, and an
``answer`` holding a one-line worked solution and a final ``#### N`` line), so ``kit.data.load_gsm8k`` reads it:

    python data/generate_arith.py --out data/arith          # writes level1.jsonl … level4.jsonl and train.jsonl
    python data/generate_arith.py --check data/arith/*.jsonl

Levels: 1 ``a + b`` (one digit each), 2 ``a - b`` (a two-digit minuend, answers 1-18), 3 ``a × b`` (one digit),
4 ``a + b - c`` (two steps). Half the problems are Chinese, half English. ``train.jsonl`` is the mix the CPU plans
train on (levels 1-3, see data/README.md). Deterministic: the same seed writes the same files.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

SEED = 20261204
PER_LEVEL = 400

# (zh, en) templates: {a}, {b}, {c} numbers, {n} a name, {t} a thing (same index in both languages).
NAMES = (("小明", "Tom"), ("小红", "Amy"), ("小刚", "Ben"), ("小丽", "Lily"), ("小华", "Sam"), ("小芳", "Mia"))
THINGS = (("苹果", "apples"), ("铅笔", "pencils"), ("贴纸", "stickers"), ("糖果", "candies"), ("书", "books"),
          ("气球", "balloons"), ("弹珠", "marbles"), ("橘子", "oranges"))
UNITS = {"苹果": "个", "铅笔": "支", "贴纸": "张", "糖果": "颗", "书": "本", "气球": "个", "弹珠": "颗", "橘子": "个"}

TEMPLATES: dict[int, tuple[tuple[str, str], ...]] = {
    1: (
        ("{n}有{a}{u}{t}，又得到了{b}{u}。{n}现在一共有多少{u}{t}？",
         "{n} has {a} {t} and gets {b} more. How many {t} does {n} have now?"),
        ("篮子里有{a}{u}{t}，{n}又放进去{b}{u}。篮子里现在有多少{u}{t}？",
         "There are {a} {t} in a basket. {n} puts in {b} more. How many {t} are in the basket now?"),
    ),
    2: (
        ("{n}有{a}{u}{t}，送给朋友{b}{u}。{n}还剩多少{u}{t}？",
         "{n} has {a} {t} and gives {b} of them to a friend. How many {t} does {n} have left?"),
        ("盒子里有{a}{u}{t}，{n}拿走了{b}{u}。盒子里还剩多少{u}{t}？",
         "A box holds {a} {t}. {n} takes {b} of them. How many {t} are left in the box?"),
    ),
    3: (
        ("{n}有{a}个袋子，每个袋子里有{b}{u}{t}。{n}一共有多少{u}{t}？",
         "{n} has {a} bags with {b} {t} in each bag. How many {t} does {n} have in all?"),
        ("{n}每天买{b}{u}{t}，买了{a}天。{n}一共买了多少{u}{t}？",
         "{n} buys {b} {t} every day for {a} days. How many {t} does {n} buy in all?"),
    ),
    4: (
        ("{n}有{a}{u}{t}，又买了{b}{u}，然后送给朋友{c}{u}。{n}还剩多少{u}{t}？",
         "{n} has {a} {t}, buys {b} more, then gives away {c}. How many {t} does {n} have now?"),
    ),
}


def _numbers(level: int, rng: random.Random) -> tuple[dict[str, int], str, int]:
    """The numbers of one problem, its one-line worked solution and its answer."""
    if level == 1:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return {"a": a, "b": b}, f"{a} + {b} = {a + b}", a + b
    if level == 2:
        a = rng.randint(10, 19)
        b = rng.randint(1, 9)
        return {"a": a, "b": b}, f"{a} - {b} = {a - b}", a - b
    if level == 3:
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        return {"a": a, "b": b}, f"{a} × {b} = {a * b}", a * b
    if level == 4:
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        c = rng.randint(1, a + b - 1)
        return {"a": a, "b": b, "c": c}, f"{a} + {b} = {a + b}\n{a + b} - {c} = {a + b - c}", a + b - c
    raise ValueError(f"no level {level}")


def problems(level: int, count: int, seed: int = SEED) -> list[dict[str, str]]:
    """``count`` distinct problems of one level, alternating Chinese and English."""
    rng = random.Random(seed * 10 + level)
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    tries = 0
    while len(out) < count:
        tries += 1
        if tries > count * 200:
            raise ValueError(f"level {level}: only {len(out)} distinct problems; lower --per-level")
        lang = len(out) % 2  # 0 zh, 1 en
        values, solution, answer = _numbers(level, rng)
        name, thing = rng.choice(NAMES), rng.choice(THINGS)
        template = rng.choice(TEMPLATES[level])[lang]
        question = template.format(n=name[lang], t=thing[lang], u=UNITS[thing[0]], **values)
        if question in seen:
            continue
        seen.add(question)
        out.append({"question": question, "answer": f"{solution}\n#### {answer}"})
    return out


_STEP = re.compile(r"^(-?\d+) ([-+×]) (-?\d+) = (-?\d+)$")
_APPLY: dict[str, Callable[[int, int], int]] = {"+": int.__add__, "-": int.__sub__, "×": int.__mul__}


def check(path: Path) -> list[str]:
    """Problems in ``path`` whose worked steps or final answer are wrong (one line each)."""
    bad = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        record = json.loads(line)
        *steps, final = record["answer"].splitlines()
        value = None
        for step in steps:
            match = _STEP.match(step)
            if not match or _APPLY[match[2]](int(match[1]), int(match[3])) != int(match[4]):
                bad.append(f"{path}:{number}: wrong step {step!r}")
            value = int(match[4]) if match else None
        if final != f"#### {value}":
            bad.append(f"{path}:{number}: final line {final!r} does not match the steps")
    return bad


def write(folder: Path, per_level: int = PER_LEVEL, seed: int = SEED) -> dict[str, int]:
    """Write level1..4.jsonl and the CPU plans' mix train.jsonl (levels 1-3 interleaved); returns the counts."""
    folder.mkdir(parents=True, exist_ok=True)
    by_level = {level: problems(level, per_level, seed) for level in TEMPLATES}
    counts = {}
    for level, rows in by_level.items():
        name = f"level{level}.jsonl"
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        counts[name] = len(rows)
    mix = [row for group in zip(by_level[1], by_level[2], by_level[3]) for row in group]
    (folder / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mix),
                                        encoding="utf-8")
    counts["train.jsonl"] = len(mix)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder to write level1..4.jsonl and train.jsonl into")
    parser.add_argument("--per-level", type=int, default=PER_LEVEL)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", nargs="*", type=Path, help="re-check files in this format")
    args = parser.parse_args(argv)
    if args.check:
        bad = [line for path in args.check for line in check(path)]
        print("\n".join(bad) or f"ok: {len(args.check)} files")
        return 1 if bad else 0
    if not args.out:
        parser.error("give --out FOLDER or --check FILES")
    for name, count in write(args.out, args.per_level, args.seed).items():
        print(f"{args.out / name}: {count} problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
