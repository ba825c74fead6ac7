"""GRPO reward functions with TRL's signature ``fn(prompts, completions, **kwargs) -> list[float]``.

Each scores one completion at a time, never raises (malformed, empty or None input scores 0.0) and never
executes model output. The module-level functions judge the default "zh" format with the tutorial's weights;
:func:`make_rewards` builds the same bundle for another format or other weights.

Weights: each function's maximum (TRL sums the functions, optionally scaled by ``GRPOConfig.reward_weights``):

- ``correctness_reward``: ``correct_weight`` (1.0) when the answer in the format's place equals the reference;
  ``fallback_credit × correct_weight`` (0.5) when the format's marker is absent but the last number in the
  text is right (``A: 18``, ``The answer is 18.``): right answers count, but less than in the asked format.
- ``strict_format_reward``: ``format_weight`` (0.5) when the whole completion is exactly the format.
- ``soft_format_reward``: ``format_weight`` (0.5) when the format's parts appear in order, any whitespace.
- ``xml_count_reward``: up to ``format_weight`` (0.5): an equal share per well-placed tag, minus 0.1% of the
  maximum per character after the last part, clipped at 0.
- ``int_reward``: ``format_weight`` (0.5) when the answer in the format's place is an integer (18 or 18.0).

The tutorial's pair "correctness 1.0 + format 0.5" is ``[correctness_reward, soft_format_reward]``; the full
bundle (:data:`DEFAULT_REWARDS`, :func:`make_rewards`) adds graded format signals for a base model that does
not follow the format yet: a perfect completion then earns 1.0 + 4 × 0.5 = 3.0. GRPO normalises rewards
within each prompt's group, so once every completion is well formatted the format rewards stop mattering and
correctness drives learning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from kit.errors import KitError
from kit.rewards.formats import TRAILING_PENALTY_PER_CHAR, AnswerFormat, answer_format
from kit.rewards.numbers import last_number, reference_value, token_value

RewardFunc = Callable[..., list[float]]

DEFAULT_FORMAT = "zh"
CORRECT_WEIGHT = 1.0
FORMAT_WEIGHT = 0.5
FALLBACK_CREDIT = 0.5  # share of correct_weight for a right answer found only as the last number in the text
_SCALARS = (str, bytes, int, float, Decimal, Fraction)


def message_content(message: Any) -> str | None:
    """The text of one chat message: its ``content`` string, or its text parts joined; None otherwise."""
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p if isinstance(p, str) else p.get("text") for p in content if isinstance(p, (str, dict))]
        texts = [t for t in texts if isinstance(t, str)]
        return "".join(texts) if texts else None
    return None


def completion_text(completion: Any) -> str | None:
    """The text of one completion as TRL passes it: a string, or a list of chat messages (the last assistant
    message counts); None for anything else (None, numbers, nested lists, messages without text)."""
    if type(completion) is str:
        return completion
    if isinstance(completion, str):
        return str(completion)
    if isinstance(completion, dict):
        return message_content(completion)
    if isinstance(completion, (list, tuple)):
        for message in reversed(completion):
            if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
                return message_content(message)
        return None
    return None


def _as_list(completions: Any) -> list[Any]:
    """``completions`` as a list, whatever arrived (None -> [], a lone string or message -> one item)."""
    if isinstance(completions, list):
        return completions
    if completions is None:
        return []
    if isinstance(completions, (str, bytes, dict)):
        return [completions]
    try:
        return list(completions)
    except Exception:
        return [completions]


def _references(answer: Any, n: int) -> list[Any]:
    """One reference per completion: a sequence is indexed (missing entries are None), a scalar repeats."""
    if isinstance(answer, _SCALARS):
        return [answer] * n
    if answer is None or isinstance(answer, dict):
        return [None] * n
    try:
        refs = list(answer)[:n]  # a list, tuple, numpy array or any other sequence
    except Exception:
        refs = []
    return refs + [None] * (n - len(refs))


def _weight(value: Any, name: str) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = math.nan
    if not math.isfinite(weight) or weight < 0:
        raise KitError(f"{name} must be a finite number >= 0, got {value!r}.")
    return weight


class RewardScorer:
    """Scores single completions for one :class:`AnswerFormat` and one set of weights."""

    def __init__(
        self,
        fmt: str | AnswerFormat = DEFAULT_FORMAT,
        *,
        correct_weight: float = CORRECT_WEIGHT,
        format_weight: float = FORMAT_WEIGHT,
        fallback_credit: float = FALLBACK_CREDIT,
    ) -> None:
        self.format = answer_format(fmt)
        self.correct_weight = _weight(correct_weight, "correct_weight")
        self.format_weight = _weight(format_weight, "format_weight")
        credit = _weight(fallback_credit, "fallback_credit")
        if credit > 1:
            raise KitError(f"fallback_credit is a share of correct_weight, between 0 and 1; got {credit}.")
        self.fallback_credit = credit

    def correctness(self, completion: Any, reference: Any) -> float:
        """``correct_weight`` when the answer equals the reference, ``fallback_credit × correct_weight`` when
        it is right but found only as the last number (marker absent), else 0.0."""
        try:
            text = completion_text(completion)
            if not text:
                return 0.0
            token, marked = self.format.answer_token(text)
            if not marked:
                token = last_number(text)
            value = token_value(token)
            if value is None:
                return 0.0
            expected = reference_value(reference)
            if expected is None or value != expected:
                return 0.0
            return self.correct_weight if marked else self.correct_weight * self.fallback_credit
        except Exception:  # a reward must never stop training
            return 0.0

    def strict(self, completion: Any) -> float:
        """``format_weight`` when the whole completion is exactly the format, else 0.0."""
        try:
            text = completion_text(completion)
            return self.format_weight if text and self.format.is_strict(text) else 0.0
        except Exception:
            return 0.0

    def soft(self, completion: Any) -> float:
        """``format_weight`` when the format's parts appear in order (whitespace-lenient), else 0.0."""
        try:
            text = completion_text(completion)
            return self.format_weight if text and self.format.is_soft(text) else 0.0
        except Exception:
            return 0.0

    def count(self, completion: Any) -> float:
        """``format_weight × AnswerFormat.count_score``: a share per well-placed tag (0 to format_weight)."""
        try:
            text = completion_text(completion)
            return self.format_weight * self.format.count_score(text) if text else 0.0
        except Exception:
            return 0.0

    def integer(self, completion: Any) -> float:
        """``format_weight`` when the answer in the format's place is an integer (18 or 18.0), else 0.0."""
        try:
            text = completion_text(completion)
            if not text:
                return 0.0
            value = self.format.answer(text)
            return self.format_weight if value is not None and value.denominator == 1 else 0.0
        except Exception:
            return 0.0

    def ranges(self) -> dict[str, tuple[float, float]]:
        """The documented (min, max) of each reward function, by function name."""
        top = self.format_weight
        return {
            "correctness_reward": (0.0, self.correct_weight),
            "strict_format_reward": (0.0, top),
            "soft_format_reward": (0.0, top),
            "xml_count_reward": (0.0, top),
            "int_reward": (0.0, top),
        }


_DEFAULT = RewardScorer()


def correctness_reward(
    prompts: Any = None, completions: Any = None, answer: Any = None, **kwargs: Any
) -> list[float]:
    """1.0 when the 最终答案 line's number equals ``answer`` (a number or a GSM8K ``#### N`` solution); 0.5 when
    that line is missing but the last number in the text is right; else 0.0. Range [0.0, 1.0]."""
    items = _as_list(completions)
    refs = _references(answer, len(items))
    score = _DEFAULT.correctness
    return [score(c, r) for c, r in zip(items, refs)]


def strict_format_reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
    """0.5 when the completion is exactly ``<reasoning>…</reasoning>`` then a line ``最终答案：N``, else 0.0.
    Range {0.0, 0.5}."""
    score = _DEFAULT.strict
    return [score(c) for c in _as_list(completions)]


def soft_format_reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
    """0.5 when ``<reasoning>…</reasoning>`` and ``最终答案：`` appear in that order (any whitespace, any text
    around), else 0.0. Range {0.0, 0.5}."""
    score = _DEFAULT.soft
    return [score(c) for c in _as_list(completions)]


def xml_count_reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
    """0.5/3 for each of ``<reasoning>``, ``</reasoning>``, ``最终答案`` found once and in order, minus 0.0005 per
    character after the 最终答案 line. Range [0.0, 0.5]."""
    score = _DEFAULT.count
    return [score(c) for c in _as_list(completions)]


def int_reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
    """0.5 when the number on the 最终答案 line is an integer (``18`` or ``18.0``), else 0.0. Range {0.0, 0.5}."""
    score = _DEFAULT.integer
    return [score(c) for c in _as_list(completions)]


DEFAULT_REWARDS: tuple[RewardFunc, ...] = (
    correctness_reward,
    strict_format_reward,
    soft_format_reward,
    xml_count_reward,
    int_reward,
)
for _fn, (_lo, _hi) in zip(DEFAULT_REWARDS, _DEFAULT.ranges().values()):
    _fn.reward_range = (_lo, _hi)  # type: ignore[attr-defined]
    _fn.answer_format = _DEFAULT.format  # type: ignore[attr-defined]


def _named(fn: RewardFunc, name: str, doc: str, scorer: RewardScorer) -> RewardFunc:
    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = doc
    fn.reward_range = scorer.ranges()[name]  # type: ignore[attr-defined]
    fn.answer_format = scorer.format  # type: ignore[attr-defined]
    return fn


def make_rewards(
    format: str | AnswerFormat = DEFAULT_FORMAT,
    correct_weight: float = CORRECT_WEIGHT,
    format_weight: float = FORMAT_WEIGHT,
    *,
    fallback_credit: float = FALLBACK_CREDIT,
) -> list[RewardFunc]:
    """The five reward functions (correctness, strict format, soft format, tag count, integer) for ``format``.

    Pass the list as ``GRPOTrainer(reward_funcs=...)``; each keeps the module-level function's name, so TRL
    logs ``rewards/correctness_reward/mean`` etc. With the defaults the module-level functions are returned.
    """
    scorer = RewardScorer(
        format, correct_weight=correct_weight, format_weight=format_weight, fallback_credit=fallback_credit
    )
    if (
        scorer.format is _DEFAULT.format
        and scorer.correct_weight == _DEFAULT.correct_weight
        and scorer.format_weight == _DEFAULT.format_weight
        and scorer.fallback_credit == _DEFAULT.fallback_credit
    ):
        return list(DEFAULT_REWARDS)
    cw, fw, fc, name = scorer.correct_weight, scorer.format_weight, scorer.fallback_credit, scorer.format.name

    def correctness(
        prompts: Any = None, completions: Any = None, answer: Any = None, **kwargs: Any
    ) -> list[float]:
        items = _as_list(completions)
        score = scorer.correctness
        return [score(c, r) for c, r in zip(items, _references(answer, len(items)))]

    def strict(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
        score = scorer.strict
        return [score(c) for c in _as_list(completions)]

    def soft(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
        score = scorer.soft
        return [score(c) for c in _as_list(completions)]

    def count(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
        score = scorer.count
        return [score(c) for c in _as_list(completions)]

    def integer(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
        score = scorer.integer
        return [score(c) for c in _as_list(completions)]

    return [
        _named(
            correctness,
            "correctness_reward",
            f"{cw} when the {name}-format answer equals ``answer``; {cw * fc} when the marker is absent "
            f"but the last number in the text is right; else 0.0. Range [0.0, {cw}].",
            scorer,
        ),
        _named(
            strict,
            "strict_format_reward",
            f"{fw} when exactly in the {name} format, else 0.0. Range {{0.0, {fw}}}.",
            scorer,
        ),
        _named(
            soft,
            "soft_format_reward",
            f"{fw} when the {name} format's parts appear in order (whitespace-lenient), else 0.0. "
            f"Range {{0.0, {fw}}}.",
            scorer,
        ),
        _named(
            count,
            "xml_count_reward",
            f"{fw}/{len(scorer.format.parts)} per well-placed part of the {name} format, minus "
            f"{fw * TRAILING_PENALTY_PER_CHAR:g} per character after the last part. Range [0.0, {fw}].",
            scorer,
        ),
        _named(
            integer,
            "int_reward",
            f"{fw} when the {name}-format answer is an integer, else 0.0. Range {{0.0, {fw}}}.",
            scorer,
        ),
    ]
