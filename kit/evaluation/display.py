"""Held-out items a reader can judge: the question, the reference, the full answers before and after, the change.

One display for every notebook. Answers are wrapped, never cut (CJK characters count two columns), and the items
are chosen honestly: the biggest gain, the biggest loss and a seeded random few, each labelled with why it was
picked. In Jupyter the display is an HTML table; headless (papermill, ``kit batch``) and outside a kernel it is
plain text, one labelled block per item. :func:`block_lines` prints an eval block with a verdict on every gain.
"""

from __future__ import annotations

import html
import math
import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.errors import KitError

SEED = 3407
WIDTH = 100

# Labels, in the notebook's language (02 is Chinese throughout).
_LABELS = {
    "en": {"question": "question", "reference": "reference", "before": "before", "after": "after",
           "gain": "biggest gain", "loss": "biggest loss", "random": "seeded pick", "item": "item",
           "of": "of", "empty": "(empty answer)", "title": "held-out items"},
    "zh": {"question": "问题", "reference": "参考答案", "before": "微调前", "after": "微调后",
           "gain": "提升最大", "loss": "下降最大", "random": "随机抽取", "item": "第", "of": "条，共",
           "empty": "（空回答）", "title": "留出集样例"},
}
# The separator between a label and its text: kit.notebooks.outputs knows display lines by it.
SEP = " │ "


def _labels(lang: str) -> dict[str, str]:
    if lang not in _LABELS:
        raise KitError(f"lang must be one of {sorted(_LABELS)}, got {lang!r}")
    return _LABELS[lang]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


_PIECE = re.compile(r"\s+|[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+")


def wrap(text: str, width: int = WIDTH) -> list[str]:
    """``text`` as lines of at most ``width`` columns: breaks at spaces, between CJK characters, and inside a
    word only when the word alone is wider than a line. Newlines in ``text`` are kept; nothing is dropped."""
    lines: list[str] = []
    for paragraph in (text or "").split("\n"):
        line, used = "", 0
        for piece in _PIECE.findall(paragraph):
            if piece.isspace():
                if line:
                    line, used = line + " ", used + 1
                continue
            size = _width(piece)
            while size > width:  # a single overlong word (a URL, a run of symbols): split it by columns
                if line.strip():
                    lines.append(line.rstrip())
                head, cols = "", 0
                for ch in piece:
                    if cols + _width(ch) > width:
                        break
                    head, cols = head + ch, cols + _width(ch)
                lines.append(head)
                piece, size, line, used = piece[len(head):], _width(piece[len(head):]), "", 0
            if used + size > width and line.strip():
                lines.append(line.rstrip())
                line, used = "", 0
            line, used = line + piece, used + size
        lines.append(line.rstrip())
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    return lines


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content", message.get("value", ""))
    if isinstance(content, list):
        return "".join(str(p.get("text", p.get("value", ""))) for p in content if isinstance(p, Mapping))
    return str(content or "")


def _last_user(messages: Sequence[Any]) -> str | None:
    for message in reversed(list(messages)):
        if isinstance(message, Mapping) and message.get("role", message.get("from")) in ("user", "human"):
            return _message_text(message)
    return None


# Chat templates: the last user turn of ChatML, Llama 3 and Gemma renderings; Alpaca / medical text templates.
_USER_TURN = (
    re.compile(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", re.S),
    re.compile(r"<\|start_header_id\|>user<\|end_header_id\|>\s*(.*?)<\|eot_id\|>", re.S),
    re.compile(r"<start_of_turn>user\n(.*?)<end_of_turn>", re.S),
)
_TEXT_SECTIONS = re.compile(r"###\s*(?:Instruction|Input|指令|输入|问题)[:：]?\s*\n(.*?)(?=\n###|\Z)", re.S)


def question_of(item: Any, style: str = "alpaca") -> str:
    """The question a held-out item asks, without the template's system scaffolding.

    ``item`` is a record (Alpaca ``instruction``/``input``, a medical record, ``messages`` or ``conversations``,
    a GSM8K ``question``/``prompt``, a preference ``prompt``), chat messages, or a rendered prompt string.
    For ``style="medical"`` the fixed instruction is scaffolding, so the patient's question (``input``) is shown.
    """
    if isinstance(item, Mapping):
        if item.get("question"):
            return str(item["question"])
        for key in ("messages", "conversations"):
            if item.get(key) is not None:
                found = _last_user(item[key])
                if found is not None:
                    return found
        if item.get("prompt") is not None:
            return question_of(item["prompt"], style)
        instruction, given = str(item.get("instruction") or "").strip(), str(item.get("input") or "").strip()
        if style == "medical" and given:
            return given
        return "\n".join(part for part in (instruction, given) if part)
    if isinstance(item, (list, tuple)):
        found = _last_user(item)
        return found if found is not None else ""
    text = str(item or "")
    for pattern in _USER_TURN:
        turns = pattern.findall(text)
        if turns:
            turn = turns[-1].strip()
            # The medical template's fixed instruction comes before "问题：" (the patient's question).
            return turn.split("问题：", 1)[1].strip() if "\n问题：" in turn else turn
    sections = _TEXT_SECTIONS.findall(text)
    if sections:
        return "\n".join(s.strip() for s in sections if s.strip())
    return re.sub(r"<\|[^|>]*\|>|<s>|</s>", "", text).strip()


def pick_items(deltas: Sequence[float], k: int = 3, seed: int = SEED) -> list[tuple[int, str]]:
    """Which items to show and why: the biggest gain, the biggest loss, then seeded random others up to ``k``.

    A gain or loss is only named when the change is non-zero (NaN changes are never the extreme). Returns
    ``[(index, "gain" | "loss" | "random"), ...]``, no index twice.
    """
    n = len(deltas)
    if n == 0 or k <= 0:
        return []
    finite = [(d, i) for i, d in enumerate(deltas) if d is not None and not math.isnan(float(d))]
    picked: list[tuple[int, str]] = []
    if finite:
        best, worst = max(finite), min(finite, key=lambda p: (p[0], -p[1]))
        if best[0] > 0:
            picked.append((best[1], "gain"))
        if worst[0] < 0 and k > len(picked):
            picked.append((worst[1], "loss"))
    rest = [i for i in range(n) if i not in {p[0] for p in picked}]
    random.Random(seed).shuffle(rest)
    picked += [(i, "random") for i in rest[: max(0, k - len(picked))]]
    return picked


@dataclass
class ShownItem:
    """One held-out item as displayed: every text in full, the metric before and after, and why it was picked."""

    index: int
    reason: str
    question: str
    reference: str
    before: str
    after: str
    metric: str
    score_before: float | None
    score_after: float | None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def change(self) -> float | None:
        if self.score_before is None or self.score_after is None:
            return None
        if math.isnan(self.score_before) or math.isnan(self.score_after):
            return None
        return self.score_after - self.score_before


def _score(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


@dataclass
class AnswerView:
    """Chosen held-out items; ``text()`` for headless output, ``_repr_html_()`` for Jupyter."""

    items: list[ShownItem]
    total: int
    lang: str = "en"
    title: str = ""
    labels: tuple[str, str] = ("", "")
    reference_label: str = ""

    def _names(self) -> dict[str, str]:
        names = dict(_labels(self.lang))
        if self.reference_label:
            names["reference"] = self.reference_label
        if self.labels[0]:
            names["before"] = self.labels[0]
        if self.labels[1]:
            names["after"] = self.labels[1]
        return names

    def _heading(self, item: ShownItem, names: dict[str, str]) -> str:
        why = names[item.reason]
        change = (f"{item.metric} {_fmt(item.score_before)} → {_fmt(item.score_after)} "
                  f"({_fmt(item.change, signed=True)})")
        if self.lang == "zh":
            return f"── 第 {item.index + 1} 条，共 {self.total} 条（{why}）· {change}"
        return f"── item {item.index + 1} of {self.total} ({why}) · {change}"

    def _fields(self, item: ShownItem, names: dict[str, str]) -> list[tuple[str, str]]:
        rows = [(names["question"], item.question), (names["reference"], item.reference)]
        rows += list(item.extra.items())
        rows += [(names["before"], item.before or names["empty"]), (names["after"], item.after or names["empty"])]
        return rows

    def text(self, width: int = WIDTH) -> str:
        """Plain text: a heading per item, then each field wrapped in full under a fixed label column."""
        names = self._names()
        label_width = max(_width(n) for item in self.items for n, _ in self._fields(item, names)) if self.items else 0
        out = [self.title] if self.title else []
        for item in self.items:
            out.append(self._heading(item, names))
            for name, value in self._fields(item, names):
                pad = " " * (label_width - _width(name))
                lines = wrap(value, max(20, width - label_width - len(SEP)))
                out.append(f"{name}{pad}{SEP}{lines[0]}")
                out += [f"{' ' * label_width}{SEP}{line}" for line in lines[1:]]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        names = self._names()
        parts = [f"<h4>{html.escape(self.title)}</h4>" if self.title else ""]
        for item in self.items:
            parts.append(f"<p><b>{html.escape(self._heading(item, names).lstrip('─ '))}</b></p>")
            parts.append("<table style='table-layout:fixed;width:100%'>")
            for name, value in self._fields(item, names):
                parts.append(f"<tr><th style='width:7em;text-align:left;vertical-align:top'>{html.escape(name)}</th>"
                             f"<td style='text-align:left;white-space:pre-wrap;word-break:break-word'>"
                             f"{html.escape(value)}</td></tr>")
            parts.append("</table>")
        return "".join(parts)

    def __repr__(self) -> str:
        return self.text()


def show(view: AnswerView) -> AnswerView:
    """HTML in an interactive Jupyter kernel; printed plain text headless or outside a kernel. Returns ``view``."""
    from kit.plots import in_kernel
    from kit.runinfo import is_headless

    if in_kernel() and not is_headless():
        from IPython.display import HTML, display

        display(HTML(view._repr_html_()))
    else:
        print(view.text())
    return view


def _column(frame: Any, names: Sequence[str]) -> str:
    for name in names:
        if name in frame:
            return name
    raise KitError(f"the table has none of the columns {list(names)}; pass a table from kit.evaluation.scoring")


def answer_view(
    before: Any,
    after: Any,
    *,
    metric: str = "rouge_l",
    questions: Sequence[str] | None = None,
    k: int = 3,
    seed: int = SEED,
    lang: str = "en",
    title: str = "",
    labels: tuple[str, str] = ("", ""),
) -> AnswerView:
    """The items to show from two evaluation tables of the same held-out items (``sft_eval``/``evaluate_generations``
    with ``prediction``/``reference``, or ``grpo_eval`` with ``completion``/``answer``); see :func:`show_answers`."""
    if len(before) != len(after):
        raise KitError(f"the before and after tables have {len(before)} and {len(after)} rows: "
                       "show answers to the same held-out items")
    if metric not in before or metric not in after:
        raise KitError(f"metric {metric!r} is not a column of both tables (columns: {list(after.columns)})")
    answer = _column(after, ("prediction", "completion"))
    reference = _column(after, ("reference", "answer"))
    n = len(after)
    if questions is not None and len(questions) != n:
        raise KitError(f"{len(questions)} questions for {n} held-out items: pass one question per item")
    asked = list(questions) if questions is not None else [question_of(p) for p in after["prompt"]]
    b_scores = [_score(v) for v in before[metric]]
    a_scores = [_score(v) for v in after[metric]]
    deltas = [math.nan if b is None or a is None else a - b for b, a in zip(b_scores, a_scores)]
    items = [
        ShownItem(index=i, reason=why, question=str(asked[i]), reference=str(after[reference].iloc[i]),
                  before=str(before[answer].iloc[i] or ""), after=str(after[answer].iloc[i] or ""), metric=metric,
                  score_before=b_scores[i], score_after=a_scores[i])
        for i, why in pick_items(deltas, k=k, seed=seed)
    ]
    return AnswerView(items, n, lang=lang, title=title or _labels(lang)["title"] + f" (n={n})", labels=labels)


def show_answers(before: Any, after: Any, **kwargs: Any) -> AnswerView:
    """Show a handful of held-out items with full before/after answers: the biggest gain and the biggest loss
    in ``metric`` and seeded random ones up to ``k``. ``questions`` (one per item, e.g. ``[question_of(r) for r in
    eval_records]``) replaces the question parsed from the rendered prompt. Returns the view (assign it)."""
    return show(answer_view(before, after, **kwargs))


def preference_view(
    pairs: Sequence[Mapping[str, Any]],
    before: Sequence[float],
    after: Sequence[float],
    *,
    metric: str = "margin",
    k: int = 3,
    seed: int = SEED,
    lang: str = "en",
    labels: tuple[str, str] = ("reference model", "trained model"),
) -> AnswerView:
    """Held-out preference pairs with the model's preference before and after (``before[i]``/``after[i]``: the
    pair's margin, > 0 meaning the chosen answer is preferred). The chosen answer is shown as the reference,
    the rejected one under its own label; the before/after rows say which answer each model prefers."""
    if not (len(pairs) == len(before) == len(after)):
        raise KitError(f"{len(pairs)} pairs, {len(before)} scores before, {len(after)} after: pass one each")

    def verdict(margin: float) -> str:
        if lang == "zh":
            return f"偏好{'被选答案' if margin > 0 else '被拒答案'}（差值 {margin:+.3f}）"
        return f"prefers the {'chosen' if margin > 0 else 'rejected'} answer (margin {margin:+.3f})"

    deltas = [a - b for a, b in zip(after, before)]
    items = []
    for i, why in pick_items(deltas, k=k, seed=seed):
        pair = pairs[i]
        chosen, rejected = _answer_text(pair["chosen"]), _answer_text(pair["rejected"])
        item = ShownItem(index=i, reason=why, question=question_of(pair["prompt"]), reference=chosen,
                         before=verdict(before[i]), after=verdict(after[i]), metric=metric,
                         score_before=float(before[i]), score_after=float(after[i]),
                         extra={"rejected" if lang == "en" else "被拒答案": rejected})
        items.append(item)
    return AnswerView(items, len(pairs), lang=lang, labels=labels, reference_label="chosen" if lang == "en" else "被选答案",
                      title=("held-out pairs" if lang == "en" else "留出的偏好对") + f" (n={len(pairs)})")


def _answer_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _message_text(value)
    if isinstance(value, (list, tuple)) and value:
        return _message_text(value[-1]) if isinstance(value[-1], Mapping) else str(value[-1])
    return str(value or "")


def show_preferences(pairs: Sequence[Mapping[str, Any]], before: Sequence[float], after: Sequence[float],
                     **kwargs: Any) -> AnswerView:
    """Show a few held-out pairs with the model's preference before and after (:func:`preference_view`)."""
    return show(preference_view(pairs, before, after, **kwargs))


# --- Eval blocks with a verdict on every gain -------------------------------------------------------------------

_VERDICT_ZH = {"better": "更好", "worse": "更差", "unclear": "不确定", "missing": "缺失"}


def block_lines(block: Mapping[str, Any], lang: str = "en") -> str:
    """The eval block one metric a line, each gain with its ci95 and its verdict (better / worse / unclear)."""
    from kit.evaluation.block import verdict

    zh = lang == "zh"
    lines = [f"留出集评估（n={block.get('n')}）：" if zh else f"eval on {block.get('split')} (n={block.get('n')}):"]
    for metric, gain in (block.get("gain") or {}).items():
        before, after = block["before"].get(metric), block["after"].get(metric)
        if gain.get("value") is None:
            lines.append(f"  {metric}: " + ("没有可评分的样本" if zh else "no scorable item"))
            continue
        lo, hi = gain["ci95"]
        word = verdict(gain)
        if zh:
            lines.append(f"  {metric}: {before:.4f} -> {after:.4f}（增益 {gain['value']:+.4f}，95% 置信区间 "
                         f"{lo:+.4f}..{hi:+.4f}，{_VERDICT_ZH[word]}）")
        else:
            lines.append(f"  {metric}: {before:.4f} -> {after:.4f} (gain {gain['value']:+.4f}, "
                         f"ci95 {lo:+.4f}..{hi:+.4f}, {word})")
    return "\n".join(lines)


def scores_line(table: Any, metrics: Sequence[str] = ("rouge_l", "bleu", "distinct_2"), label: str = "before",
                lang: str = "en") -> str:
    """One line of mean scores for an evaluation table: ``before: rouge_l 0.1018, bleu 0.0331 (n=8, 0 empty)``."""
    parts = []
    for metric in metrics:
        if metric in table:
            mean = table[metric].mean(skipna=True)
            parts.append(f"{metric} {'n/a' if mean != mean else f'{float(mean):.4f}'}")
    answers = table["prediction"] if "prediction" in table else table.get("completion")
    empty = 0 if answers is None else int((answers.fillna("").astype(str).str.strip() == "").sum())
    if lang == "zh":
        return f"{label}：{'，'.join(parts)}（留出样本 {len(table)} 条，空回答 {empty} 条）"
    return f"{label}: {', '.join(parts)} (mean over {len(table)} held-out items, {empty} empty answers)"
