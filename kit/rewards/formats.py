"""The answer formats a GRPO run can ask for, each defined once: system prompt, extraction, format checks.

``answer_format("xml" | "zh" | "hash")`` returns an :class:`AnswerFormat`; the reward functions in
:mod:`kit.rewards.scoring` only ever call its methods, so adding a format means adding one entry here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from kit.errors import KitError
from kit.formatting.prompts import (
    REASONING_SYSTEM_PROMPT_HASH,
    REASONING_SYSTEM_PROMPT_XML,
    REASONING_SYSTEM_PROMPT_ZH,
)
from kit.rewards.numbers import region_token, token_value

TRAILING_PENALTY_PER_CHAR = 0.001  # of the count reward's unit range, per character after the final part


@dataclass(frozen=True)
class AnswerFormat:
    """One answer format: what the model is told and how its output is judged.

    ``extract(text)`` returns the answer region (the text the format reserves for the answer) or None when the
    format's marker is absent; ``pick`` says which number in that region is the answer ("first" right after a
    line marker such as ``#### 18 (3 boxes)``, "last" inside an XML tag such as ``The total is 3 × 6 = 18``).
    ``strict_pattern`` must match the whole completion and every tag in ``once`` must occur exactly once
    (checked first, which also keeps the greedy pattern linear in the text's length). ``soft_steps`` are
    patterns that must be found one after another, anywhere (linear time, searched left to right);
    ``soft_pattern`` is the same rule as one regex (the steps joined by ``.*?``), kept as the readable
    definition. ``parts`` are the literal markers the count reward credits, in order; ``line_marker`` says the
    last part starts a line whose end closes the answer.
    """

    name: str
    system_prompt: str
    extract: Callable[[str], str | None]
    pick: str
    strict_pattern: re.Pattern[str]
    soft_steps: tuple[re.Pattern[str], ...]
    once: tuple[str, ...]
    parts: tuple[str, ...]
    line_marker: bool
    layout: str = "{reasoning}\n{answer}"  # a model-perfect completion, with {reasoning} and {answer}

    def render(self, reasoning: str, answer: str) -> str:
        """A completion in exactly this format (SFT warm-up targets, gold completions for the pre-flight).

        A GSM8K-style worked solution may be passed as ``reasoning``: its own ``#### N`` line is dropped.
        """
        lines = [line for line in str(reasoning).strip().splitlines() if not line.lstrip().startswith("####")]
        return self.layout.format(reasoning="\n".join(lines).strip() or "…", answer=str(answer).strip())

    def answer_token(self, text: str) -> tuple[str | None, bool]:
        """The answer's number token and whether the format's marker was present (no fallback here)."""
        region = self.extract(text)
        if region is None:
            return None, False
        return region_token(region, self.pick), True

    def answer(self, text: str) -> Fraction | None:
        """The exact value of the answer in the format's place, or None (marker absent or no number there)."""
        return token_value(self.answer_token(text)[0])

    def is_strict(self, text: str) -> bool:
        """True when the whole completion is exactly this format (each tag once, nothing before or after)."""
        for tag in self.once:
            index = text.find(tag)
            if index == -1 or index != text.rfind(tag):
                return False
        return self.strict_pattern.fullmatch(text) is not None

    def is_soft(self, text: str) -> bool:
        """True when the format's parts appear in order, with any whitespace and any text around them."""
        position = 0
        for step in self.soft_steps:
            found = step.search(text, position)
            if found is None:
                return False
            position = found.end()
        return True

    @property
    def soft_pattern(self) -> re.Pattern[str]:
        """``soft_steps`` as one regex: what :meth:`is_soft` searches for, in readable form."""
        return re.compile(".*?".join(f"(?:{step.pattern})" for step in self.soft_steps), re.DOTALL)

    def count_score(self, text: str) -> float:
        """Share of ``parts`` that occur exactly once and after the previous part, minus a small penalty for
        text after the final part (``TRAILING_PENALTY_PER_CHAR`` per character); in [0, 1]."""
        found = 0
        previous = -1
        end = -1
        for part in self.parts:
            index = text.find(part)
            if index > previous and index == text.rfind(part):  # found (index > -1), once, after the previous
                found += 1
                previous = index
                end = index + len(part)
            else:
                end = -1
        score = found / len(self.parts)
        if end != -1:  # the final part is in place: penalise what follows it
            if self.line_marker:
                newline = text.find("\n", end)
                end = len(text) if newline == -1 else newline
            score -= TRAILING_PENALTY_PER_CHAR * len(text[end:].strip())
        return min(1.0, max(0.0, score))


def _extract_xml(text: str) -> str | None:
    start = text.rfind("<answer>")
    if start == -1:
        return None
    stop = text.find("</answer>", start)
    return text[start + 8 : stop] if stop != -1 else text[start + 8 :]


def _line_after(marker: str) -> Callable[[str], str | None]:
    width = len(marker)

    def extract(text: str) -> str | None:
        start = text.rfind(marker)
        if start == -1:
            return None
        stop = text.find("\n", start)
        return text[start + width : stop] if stop != -1 else text[start + width :]

    extract.__name__ = f"extract_after_{marker}"
    return extract


_NUM_ZH = "[-−－]?[0-9０-９]+(?:[.．][0-9０-９]+)?"
_NUM_HASH = r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?"

_FORMATS: dict[str, AnswerFormat] = {
    "xml": AnswerFormat(
        name="xml",
        system_prompt=REASONING_SYSTEM_PROMPT_XML,
        extract=_extract_xml,
        pick="last",
        # The prompt's layout exactly; the final newline is optional because decoding drops it before EOS.
        strict_pattern=re.compile(r"<reasoning>\n.+\n</reasoning>\n<answer>\n.+\n</answer>\n?", re.DOTALL),
        soft_steps=(
            re.compile("<reasoning>"),
            re.compile(r"</reasoning>\s*<answer>"),
            re.compile("</answer>"),
        ),
        once=("<reasoning>", "</reasoning>", "<answer>", "</answer>"),
        parts=("<reasoning>", "</reasoning>", "<answer>", "</answer>"),
        line_marker=False,
        layout="<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>\n",
    ),
    "zh": AnswerFormat(
        name="zh",
        system_prompt=REASONING_SYSTEM_PROMPT_ZH,
        extract=_line_after("最终答案"),
        pick="first",
        # <reasoning>…</reasoning>, a new line 最终答案：N (ASCII or full-width colon, N digits only), end.
        strict_pattern=re.compile(rf"<reasoning>\s*\S.*</reasoning>\n最终答案[:：] ?{_NUM_ZH}\n?", re.DOTALL),
        soft_steps=(re.compile("<reasoning>"), re.compile(r"</reasoning>\s*最终答案\s*[:：]")),
        once=("<reasoning>", "</reasoning>", "最终答案"),
        parts=("<reasoning>", "</reasoning>", "最终答案"),
        line_marker=True,
        layout="<reasoning>\n{reasoning}\n</reasoning>\n最终答案：{answer}",
    ),
    "hash": AnswerFormat(
        name="hash",
        system_prompt=REASONING_SYSTEM_PROMPT_HASH,
        extract=_line_after("####"),
        pick="first",
        # Worked solution, then a last line "#### N" (GSM8K style: thousands separators allowed).
        strict_pattern=re.compile(rf"\s*\S.*\n#### ?{_NUM_HASH}\n?", re.DOTALL),
        soft_steps=(re.compile(r"\S"), re.compile(r"####[ \t]*[-−－$＄]?[0-9０-９]")),
        once=("####",),
        parts=("####",),
        line_marker=True,
        layout="{reasoning}\n#### {answer}",
    ),
}

FORMAT_NAMES = tuple(_FORMATS)


def answer_format(name: str | AnswerFormat) -> AnswerFormat:
    """The :class:`AnswerFormat` called ``name`` ("xml", "zh" or "hash"); an AnswerFormat passes through."""
    if isinstance(name, AnswerFormat):
        return name
    try:
        return _FORMATS[str(name).lower()]
    except KeyError:
        raise KitError(
            f"Unknown answer format {name!r}. Use one of {', '.join(FORMAT_NAMES)} "
            "(xml: <reasoning>/<answer> tags; zh: <reasoning> then 最终答案：N; hash: a last line '#### N')."
        ) from None
