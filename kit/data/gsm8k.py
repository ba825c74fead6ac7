"""GSM8K-style math (``question``/``answer`` with a worked solution ending ``#### N``) as GRPO-ready rows.

Each kept row has ``prompt`` (system + user chat messages, or one string), ``answer`` (the final number as
a plain string: no thousands separators, currency or quotes), ``solution`` (the worked solution with the
``<<48/2=24>>`` calculator annotations removed, ``#### N`` line kept) and ``question``. TRL passes the extra
columns to reward functions as keyword arguments (``answer=[...]``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from kit.data.report import LoadReport
from kit.data.sources import Spec, build_report, load_records, resolve
from kit.data.text import as_text, strip_edges
from kit.formatting.prompts import REASONING_SYSTEM_PROMPT

_ANNOTATION = re.compile(r"<<[^<>]*>>")
SPEC = Spec("gsm8k", required=(("question",), ("answer",)))
_PLAIN = re.compile(r"-?\d*\.?\d+")


def strip_calculator_annotations(solution: str) -> str:
    """Remove GSM8K calculator annotations such as ``<<48/2=24>>`` (the result after them stays)."""
    return _ANNOTATION.sub("", solution)


def answer_text(value: Fraction, token: str | None = None) -> str:
    """The ``answer`` column's text: the token as written without separators when it is a plain decimal
    (``$1,234.50`` -> ``1234.50``), else the exact value's plain form (``1 1/2`` -> ``3/2``, ``1e6`` -> ``1000000``)."""
    from kit.rewards.numbers import format_value, to_ascii

    if token is not None:
        plain = to_ascii(token).replace(",", "").replace("$", "").strip().rstrip(".")
        if _PLAIN.fullmatch(plain):
            plain = plain.replace("-.", "-0.") if plain.startswith("-.") else plain
            plain = "0" + plain if plain.startswith(".") else plain
            if Fraction(plain) == value:  # not "2,75" read as 275
                return plain
    return format_value(value)


def read_final_answer(solution: Any) -> tuple[str | None, str | None]:
    """(answer text, None) for a worked solution's ``#### N`` line, or (None, skip reason).

    The number is read by :mod:`kit.rewards.numbers` (the rewards read it back to the same value): thousands
    groups of every kind, decimal commas, fractions, mixed numbers, scientific form, full-width and
    Arabic-Indic digits. A line it cannot read as exactly one number is a reason, never a truncated number.
    """
    from kit.rewards.numbers import final_answer, final_lines, read_answer

    if not isinstance(solution, str):
        return None, "no_final_answer"
    value, reason = final_answer(solution)
    if value is None:
        return None, str(reason)
    lines = [line for line in final_lines(solution) if re.search(r"\d", line)]
    token = None
    for line in reversed(lines):
        got, _, token = read_answer(line)
        if got == value:
            break
    return answer_text(value, token), None


def extract_final_answer(solution: str) -> str | None:
    """The number on the last ``#### N`` line of a worked solution as plain text, or None if there is none.

    Handles thousands separators (``1,080`` -> ``1080``), negatives, decimals, ``$`` and quotes (curly or
    straight) around the number, and every form :func:`read_final_answer` reads.
    """
    return read_final_answer(solution)[0]


def _converter(system_prompt: str | None, chat: bool):
    def convert(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, tuple[str, ...]]:
        if "question" not in row or "answer" not in row:
            return None, "missing_field", ()
        question, raw = as_text(row["question"]), as_text(row["answer"])
        if question is None or raw is None:
            return None, "bad_field_type", ()
        question = strip_edges(question)
        if not question:
            return None, "empty_question", ()
        answer, reason = read_final_answer(raw)
        if answer is None:
            return None, reason, ()
        solution = strip_edges(strip_calculator_annotations(raw))
        fixes = ("annotations_stripped",) if _ANNOTATION.search(raw) else ()
        if chat:
            prompt: Any = [{"role": "user", "content": question}]
            if system_prompt:
                prompt.insert(0, {"role": "system", "content": system_prompt})
        else:
            prompt = f"{system_prompt}\n\n{question}" if system_prompt else question
        record = {"prompt": prompt, "answer": answer, "solution": solution, "question": question}
        return record, None, fixes

    return convert


def load_gsm8k(
    path: str | os.PathLike[str],
    system_prompt: str | None = REASONING_SYSTEM_PROMPT,
    chat: bool = True,
    columns: Mapping[str, str] | str | None = None,
    *,
    config: str | None = None,
    split: str | None = None,
) -> tuple[Any, LoadReport]:
    """Load GSM8K-style rows (any source :mod:`kit.data.sources` reads) into prompt/answer/solution/question.

    ``chat=True`` makes ``prompt`` a message list (system, user); ``chat=False`` one string (system prompt,
    blank line, question). ``columns={"question": "problem", "answer": "solution"}`` maps other names; a
    hub id such as ``openai/gsm8k:main:train`` works where the hub is reachable. Skipped and counted:
    missing/empty question, no ``####`` line ("no_final_answer"), a ``####`` line without a number
    ("non_numeric_answer"), a number the parser cannot read as one ("ambiguous_answer": ``3 apples and 4 pears``;
    "unreadable_answer": ``2/0``), duplicate questions. A load that keeps no row is a :class:`KitError`.
    """
    from kit.data.registry import note_unsupported

    where = resolve(path, "gsm8k", columns, config, split)
    label, records, reports, found = load_records(
        where.path,
        SPEC,
        _converter(system_prompt, chat),
        key=lambda r: r["question"],
        columns=where.columns,
        config=where.config,
        split=where.split,
    )
    dataset, report = build_report(
        label,
        SPEC,
        records,
        reports,
        found,
        where.columns,
        text_fields=("question", "solution"),
        opening_field="question",
    )
    note_unsupported(report, path)
    return dataset, report
