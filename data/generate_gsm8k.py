"""Generate GSM8K-style word problems with known answers, in English and Chinese, deterministically.

Records 58+ of gsm8k/train.jsonl and 26+ of gsm8k/train_zh.jsonl are this script's output (see data/README.md):

    python data/generate_gsm8k.py --lang en --count 243 >> data/gsm8k/train.jsonl
    python data/generate_gsm8k.py --lang zh --count 175 >> data/gsm8k/train_zh.jsonl
    python data/generate_gsm8k.py --check data/gsm8k/train.jsonl data/gsm8k/train_zh.jsonl

The Chinese records are translations of the first English ones (same seed, same numbers). Every calculator
annotation ``<<a*b=c>>c`` is evaluated with Python's ``ast`` (never ``eval``) before it is written, and
``--check`` re-checks any file in this format. Final answers of 1,000 or more carry thousands separators.
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from pathlib import Path

SEED = 20261201
_OPS: dict[type, Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
_ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>(\S+)")


def evaluate(expr: str) -> Fraction:
    """Exact value of an arithmetic expression of numbers, + - * / and parentheses."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"not plain arithmetic: {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


def number(value: Fraction) -> str:
    """An integer as digits, a terminating decimal as 0.4; anything else is a bug in a template."""
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6f}".rstrip("0")
    if Fraction(text) != value:
        raise ValueError(f"{value} is not a short decimal")
    return text


@dataclass
class Calc:
    """One annotated step: ``expr = <<expr=value>>value``."""

    expr: str

    @property
    def value(self) -> int:
        exact = evaluate(self.expr)
        if exact.denominator != 1:
            raise ValueError(f"{self.expr} = {exact} is not an integer")
        return exact.numerator

    def __str__(self) -> str:
        shown = number(evaluate(self.expr))
        return f"{self.expr} = <<{self.expr}={shown}>>{shown}"


def final_line(value: int) -> str:
    return f"#### {value:,}" if abs(value) >= 1000 else f"#### {value}"


NAMES = [("Maya", "玛雅"), ("Leo", "利奥"), ("Priya", "普丽娅"), ("Tom", "汤姆"), ("Anna", "安娜"),
         ("Omar", "奥马尔"), ("Lucy", "露西"), ("Ken", "肯"), ("Sara", "萨拉"), ("Ben", "本"),
         ("Nina", "妮娜"), ("Sam", "萨姆")]

# A template draws numbers and returns (English question, Chinese question, [(English step, Chinese step)], answer).
Problem = tuple[str, str, list[tuple[str, str]], int]


def shop_change(r: random.Random, en: str, zh: str) -> Problem:
    n, price = r.randint(2, 9), r.randint(3, 15)
    paid = next(b for b in (20, 50, 100, 200) if b > n * price)
    a, b = Calc(f"{n}*{price}"), Calc(f"{paid}-{n * price}")
    return (f"{en} buys {n} notebooks at ${price} each and pays with a ${paid} note. How much change does {en} get?",
            f"{zh}买了{n}本笔记本，每本{price}元，付了一张{paid}元的钞票。应该找回多少元？",
            [(f"The notebooks cost {a} dollars.", f"笔记本一共 {a} 元。"),
             (f"The change is {b} dollars.", f"应找回 {b} 元。")], b.value)


def share_sweets(r: random.Random, en: str, zh: str) -> Problem:
    k = r.choice([2, 3, 4, 5])
    total, eaten = k * r.randint(4, 12), r.randint(1, 3)
    word_en = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth"}[k]
    word_zh = {2: "一半", 3: "三分之一", 4: "四分之一", 5: "五分之一"}[k]
    a = Calc(f"{total}/{k}")
    b = Calc(f"{total}-{a.value}")
    c = Calc(f"{b.value}-{eaten}")
    return (f"{en} has {total} sweets. {en} gives {word_en} of them to a friend and then eats {eaten}. How many sweets are left?",
            f"{zh}有{total}颗糖。{zh}把其中的{word_zh}送给朋友，然后自己吃了{eaten}颗。还剩多少颗糖？",
            [(f"{en} gives away {a} sweets.", f"送出 {a} 颗糖。"),
             (f"That leaves {b} sweets.", f"送完后还有 {b} 颗。"),
             (f"After eating {eaten}, {c} sweets are left.", f"吃掉{eaten}颗后还剩 {c} 颗。")], c.value)


def temperature_drop(r: random.Random, en: str, zh: str) -> Problem:
    start, drop, hours = r.randint(-5, 8), r.randint(2, 4), r.randint(3, 6)
    a = Calc(f"{drop}*{hours}")
    b = Calc(f"{start}-{a.value}")
    return (f"At midnight the temperature was {start} degrees Celsius. It fell by {drop} degrees every hour for {hours} hours. What was the temperature then?",
            f"午夜时气温是{start}摄氏度。之后{hours}个小时里，气温每小时下降{drop}度。那时气温是多少摄氏度？",
            [(f"The temperature fell {a} degrees.", f"气温一共下降了 {a} 度。"),
             (f"It was then {b} degrees Celsius.", f"那时气温是 {b} 摄氏度。")], b.value)


def bus(r: random.Random, en: str, zh: str) -> Problem:
    start, off1, on1 = r.randint(20, 50), r.randint(5, 15), r.randint(3, 12)
    off2 = r.randint(2, 10)
    a = Calc(f"{start}-{off1}+{on1}")
    b = Calc(f"{a.value}-{off2}")
    return (f"A bus starts with {start} passengers. At the first stop {off1} get off and {on1} get on. At the second stop {off2} get off. How many passengers are on the bus now?",
            f"一辆公交车出发时有{start}名乘客。第一站下车{off1}人、上车{on1}人，第二站又下车{off2}人。现在车上有多少名乘客？",
            [(f"After the first stop there are {a} passengers.", f"第一站后有 {a} 名乘客。"),
             (f"After the second stop there are {b} passengers.", f"第二站后有 {b} 名乘客。")], b.value)


def savings(r: random.Random, en: str, zh: str) -> Problem:
    weekly, weeks = r.choice([5, 8, 10, 12, 15, 20]), r.randint(4, 12)
    spent = r.randint(1, weekly * weeks // 10) * 5
    a = Calc(f"{weekly}*{weeks}")
    b = Calc(f"{a.value}-{spent}")
    return (f"{en} saves ${weekly} every week for {weeks} weeks and then spends ${spent} on a jacket. How much money does {en} have left?",
            f"{zh}每周存{weekly}元，存了{weeks}周，然后花{spent}元买了一件夹克。{zh}还剩多少元？",
            [(f"{en} saves {a} dollars.", f"一共存了 {a} 元。"),
             (f"After the jacket, {en} has {b} dollars left.", f"买完夹克后还剩 {b} 元。")], b.value)


def journey(r: random.Random, en: str, zh: str) -> Problem:
    v1, h1, v2, h2 = r.choice([40, 50, 60, 70, 80, 90]), r.randint(2, 5), r.choice([30, 45, 60, 75]), r.randint(1, 4)
    a, b = Calc(f"{v1}*{h1}"), Calc(f"{v2}*{h2}")
    c = Calc(f"{a.value}+{b.value}")
    return (f"A car drives at {v1} km per hour for {h1} hours and then at {v2} km per hour for {h2} hours. How far does it drive in total?",
            f"一辆汽车先以每小时{v1}千米的速度行驶{h1}小时，再以每小时{v2}千米的速度行驶{h2}小时。它一共行驶了多少千米？",
            [(f"The first part is {a} km.", f"第一段行驶了 {a} 千米。"),
             (f"The second part is {b} km.", f"第二段行驶了 {b} 千米。"),
             (f"In total it drives {c} km.", f"一共行驶了 {c} 千米。")], c.value)


def chairs(r: random.Random, en: str, zh: str) -> Problem:
    rows, per, empty = r.randint(8, 30), r.randint(10, 25), r.randint(5, 40)
    a = Calc(f"{rows}*{per}")
    b = Calc(f"{a.value}-{empty}")
    return (f"A hall has {rows} rows of {per} chairs. At a concert {empty} chairs stay empty. How many people are sitting?",
            f"礼堂里有{rows}排椅子，每排{per}把。音乐会上有{empty}把椅子空着。有多少人坐着？",
            [(f"The hall has {a} chairs.", f"礼堂共有 {a} 把椅子。"),
             (f"The number of people sitting is {b}.", f"坐着 {b} 人。")], b.value)


def discount(r: random.Random, en: str, zh: str) -> Problem:
    pct, zhe = r.choice([(10, "九折"), (20, "八折"), (25, "七五折"), (50, "五折")])
    price, n = r.choice([20, 40, 60, 80, 100, 120]), r.randint(2, 5)
    a = Calc(f"{price}*{pct / 100:g}")
    b = Calc(f"{price}-{a.value}")
    c = Calc(f"{b.value}*{n}")
    return (f"A pair of shoes costs ${price}. In a sale everything is {pct}% off. How much do {n} pairs cost in the sale?",
            f"一双鞋原价{price}元。促销时全场打{zhe}（便宜{pct}%）。促销时买{n}双要多少元？",
            [(f"Each pair is {a} dollars cheaper.", f"每双便宜 {a} 元。"),
             (f"Each pair costs {b} dollars.", f"每双售价 {b} 元。"),
             (f"{n} pairs cost {c} dollars.", f"{n}双共 {c} 元。")], c.value)


def reading(r: random.Random, en: str, zh: str) -> Problem:
    per, days = r.choice([12, 15, 20, 25, 30, 40]), r.randint(6, 15)
    pages = per * days
    a = Calc(f"{pages}/{per}")
    return (f"{en}’s book has {pages} pages. {en} reads {per} pages a day. How many days does it take to finish the book?"
            if r.random() < 0.2 else
            f"{en} has a book with {pages} pages and reads {per} pages a day. How many days does it take to finish it?",
            f"{zh}有一本{pages}页的书，每天读{per}页。需要多少天读完？",
            [(f"It takes {a} days.", f"需要 {a} 天。")], a.value)


def parking(r: random.Random, en: str, zh: str) -> Problem:
    start = r.randint(1, 4)
    down = start + r.randint(1, 4)
    a = Calc(f"{start}-{down}")
    return (f"A lift is on floor {start}. It goes down {down} floors to the car park. Floors below the ground are negative. Which floor is the car park on?",
            f"电梯在{start}楼，向下运行{down}层到达停车场。地面以下的楼层记为负数。停车场在第几层？",
            [(f"The car park is on floor {a}.", f"停车场在第 {a} 层。")], a.value)


def overdraft(r: random.Random, en: str, zh: str) -> Problem:
    balance, price, n = r.randint(20, 90), r.randint(15, 40), r.randint(2, 5)
    a = Calc(f"{price}*{n}")
    b = Calc(f"{balance}-{a.value}")
    return (f"{en} has ${balance} in a bank account and pays for {n} concert tickets at ${price} each. What is the balance now?",
            f"{zh}的银行账户里有{balance}元，买了{n}张音乐会门票，每张{price}元。现在账户余额是多少元？",
            [(f"The tickets cost {a} dollars.", f"门票一共 {a} 元。"),
             (f"The balance is {b} dollars.", f"余额是 {b} 元。")], b.value)


def factory(r: random.Random, en: str, zh: str) -> Problem:
    machines, per_hour, hours = r.randint(3, 12), r.choice([25, 40, 60, 75, 120]), r.choice([8, 10, 12, 16])
    a = Calc(f"{machines}*{per_hour}")
    b = Calc(f"{a.value}*{hours}")
    return (f"A factory has {machines} machines. Each machine makes {per_hour} bottles an hour. How many bottles do they make in {hours} hours?",
            f"一家工厂有{machines}台机器，每台每小时生产{per_hour}个瓶子。{hours}小时一共生产多少个瓶子？",
            [(f"Each hour they make {a} bottles.", f"每小时生产 {a} 个。"),
             (f"In {hours} hours they make {b} bottles.", f"{hours}小时生产 {b} 个。")], b.value)


def garden(r: random.Random, en: str, zh: str) -> Problem:
    length, width, per = r.randint(4, 15), r.randint(2, 8), r.randint(2, 6)
    a = Calc(f"{length}*{width}")
    b = Calc(f"{a.value}*{per}")
    return (f"A garden bed is {length} m long and {width} m wide. {en} plants {per} flowers in each square metre. How many flowers does {en} plant?",
            f"一块花坛长{length}米、宽{width}米。{zh}每平方米种{per}株花。{zh}一共种了多少株花？",
            [(f"The bed is {a} square metres.", f"花坛面积是 {a} 平方米。"),
             (f"{en} plants {b} flowers.", f"一共种了 {b} 株花。")], b.value)


def ages(r: random.Random, en: str, zh: str) -> Problem:
    age, older, years = r.randint(5, 14), r.randint(2, 9), r.randint(3, 10)
    a = Calc(f"{age}+{older}")
    b = Calc(f"{a.value}+{years}")
    return (f"{en} is {age} years old. {en}’s brother is {older} years older. How old will the brother be in {years} years?",
            f"{zh}今年{age}岁，哥哥比{zh}大{older}岁。再过{years}年，哥哥多少岁？",
            [(f"The brother is {a} years old now.", f"哥哥今年 {a} 岁。"),
             (f"In {years} years he will be {b}.", f"{years}年后哥哥 {b} 岁。")], b.value)


def fair(r: random.Random, en: str, zh: str) -> Problem:
    tickets, price, cost = r.randint(120, 600), r.choice([5, 8, 10, 12, 15]), r.randint(4, 20) * 50
    a = Calc(f"{tickets}*{price}")
    b = Calc(f"{a.value}-{cost}")
    return (f"A school fair sells {tickets} tickets at ${price} each. The fair costs ${cost} to run. How much profit does it make?",
            f"学校义卖会卖出{tickets}张票，每张{price}元，举办费用是{cost}元。义卖会盈利多少元？",
            [(f"Ticket sales bring in {a} dollars.", f"门票收入 {a} 元。"),
             (f"The profit is {b} dollars.", f"盈利 {b} 元。")], b.value)


def dive(r: random.Random, en: str, zh: str) -> Problem:
    depth, more, up = r.randint(20, 120), r.randint(10, 60), r.randint(5, 30)
    a = Calc(f"-{depth}-{more}")
    b = Calc(f"{a.value}+{up}")
    return (f"A submarine is at -{depth} m. It dives another {more} m and then rises {up} m. What is its depth now, as a negative number?",
            f"一艘潜艇位于-{depth}米处。它又下潜{more}米，然后上浮{up}米。它现在位于多少米处（用负数表示）？",
            [(f"After diving it is at {a} m.", f"下潜后位于 {a} 米。"),
             (f"After rising it is at {b} m.", f"上浮后位于 {b} 米。")], b.value)


def eggs(r: random.Random, en: str, zh: str) -> Problem:
    per_cake = r.choice([2, 3, 4, 6])
    dozens = per_cake * r.randint(1, 4)
    a = Calc(f"{dozens}*12")
    b = Calc(f"{a.value}/{per_cake}")
    return (f"A baker has {dozens} dozen eggs and uses {per_cake} eggs for each cake. How many cakes can the baker make?",
            f"面包师有{dozens}打鸡蛋（每打12个），每个蛋糕用{per_cake}个鸡蛋。面包师能做多少个蛋糕？",
            [(f"There are {a} eggs.", f"一共有 {a} 个鸡蛋。"),
             (f"That makes {b} cakes.", f"能做 {b} 个蛋糕。")], b.value)


def tank(r: random.Random, en: str, zh: str) -> Problem:
    den = r.choice([4, 5, 8, 10])
    num = r.choice([k for k in range(1, den) if gcd(k, den) == 1])
    cap = den * r.randint(10, 60)
    frac_zh = f"{'零一二三四五六七八九十'[den]}分之{'零一二三四五六七八九十'[num]}"
    a = Calc(f"{cap}*{num}/{den}")
    b = Calc(f"{cap}-{a.value}")
    return (f"A tank holds {cap} litres and is {num}/{den} full. How many more litres are needed to fill it?",
            f"一个水箱能装{cap}升水，现在装了{frac_zh}。还需要再加多少升水才能装满？",
            [(f"It holds {a} litres now.", f"现在有 {a} 升水。"),
             (f"It needs {b} more litres.", f"还需要 {b} 升。")], b.value)


def wages(r: random.Random, en: str, zh: str) -> Problem:
    rate, hours, weeks = r.choice([12, 15, 18, 20, 25]), r.choice([20, 30, 35, 40]), r.randint(2, 8)
    a = Calc(f"{rate}*{hours}")
    b = Calc(f"{a.value}*{weeks}")
    return (f"{en} earns ${rate} an hour and works {hours} hours a week. How much does {en} earn in {weeks} weeks?",
            f"{zh}每小时挣{rate}元，每周工作{hours}小时。{zh}{weeks}周一共挣多少元？",
            [(f"Each week {en} earns {a} dollars.", f"每周挣 {a} 元。"),
             (f"In {weeks} weeks {en} earns {b} dollars.", f"{weeks}周挣 {b} 元。")], b.value)


def pizza(r: random.Random, en: str, zh: str) -> Problem:
    people, slices, per_pizza = r.randint(4, 12), r.randint(2, 3), 8
    need = people * slices
    pizzas = -(-need // per_pizza)
    a, b = Calc(f"{people}*{slices}"), Calc(f"{pizzas}*{per_pizza}")
    c = Calc(f"{b.value}-{a.value}")
    return (f"{people} friends each eat {slices} slices of pizza. Each pizza has {per_pizza} slices, and they order {pizzas} pizzas. How many slices are left over?",
            f"{people}个朋友每人吃{slices}块披萨。每个披萨切成{per_pizza}块，他们点了{pizzas}个披萨。剩下多少块？",
            [(f"They eat {a} slices.", f"他们吃了 {a} 块。"),
             (f"The pizzas have {b} slices.", f"披萨一共 {b} 块。"),
             (f"The slices left over are {c}.", f"剩下 {c} 块。")], c.value)


def minutes(r: random.Random, en: str, zh: str) -> Problem:
    tasks, each = r.randint(3, 9), r.choice([10, 15, 20, 30])
    total = tasks * each
    while total % 60:
        tasks += 1
        total = tasks * each
    a = Calc(f"{tasks}*{each}")
    b = Calc(f"{a.value}/60")
    return (f"{en} has {tasks} chores and each takes {each} minutes. How many hours does {en} spend on chores?",
            f"{zh}有{tasks}项家务，每项需要{each}分钟。{zh}做家务一共要多少小时？",
            [(f"The chores take {a} minutes.", f"家务一共要 {a} 分钟。"),
             (f"That is {b} hours.", f"也就是 {b} 小时。")], b.value)


TEMPLATES = [shop_change, share_sweets, temperature_drop, bus, savings, journey, chairs, discount, reading,
             parking, overdraft, factory, garden, ages, fair, dive, eggs, tank, wages, pizza, minutes]


def generate(count: int, seed: int = SEED) -> list[tuple[dict[str, str], dict[str, str]]]:
    """``count`` (English, Chinese) record pairs, the same for the same seed; questions do not repeat."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < count:
        template = TEMPLATES[len(out) % len(TEMPLATES)] if len(out) < len(TEMPLATES) else rng.choice(TEMPLATES)
        en_name, zh_name = rng.choice(NAMES)
        q_en, q_zh, steps, answer = template(rng, en_name, zh_name)
        if q_en in seen or q_zh in seen:
            continue
        seen.update((q_en, q_zh))
        en = {"question": q_en, "answer": "\n".join([s for s, _ in steps] + [final_line(answer)])}
        zh = {"question": q_zh, "answer": "\n".join([s for _, s in steps] + [final_line(answer)])}
        out.append((en, zh))
    return out


def check_record(record: dict[str, str]) -> list[str]:
    """Problems with one record: annotations that do not compute, or a final line that is not ``#### N``."""
    errors = []
    lines = record["answer"].split("\n")
    for expr, shown, after in _ANNOTATION.findall(record["answer"]):
        after = after.rstrip("。.,，")
        if evaluate(expr) != Fraction(shown) or after != shown:
            errors.append(f"<<{expr}={shown}>>{after}")
    if not re.fullmatch(r"#### -?\d{1,3}(,\d{3})*|#### -?\d+", lines[-1]):
        errors.append(f"final line {lines[-1]!r}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=["en", "zh"], default="en")
    parser.add_argument("--count", type=int, default=243)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", nargs="+", type=Path, metavar="FILE", help="check the annotations of JSONL files")
    args = parser.parse_args(argv)
    if args.check:
        bad = 0
        for path in args.check:
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for error in check_record(json.loads(line)):
                    bad += 1
                    print(f"{path}:{n}: {error}")
        return 1 if bad else 0
    for en, zh in generate(args.count, args.seed):
        record = en if args.lang == "en" else zh
        assert not check_record(record), record
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
