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
from typing import Any

from kit.data.report import LoadReport
from kit.data.sources import Spec, build_report, load_records, resolve
from kit.data.text import as_text, strip_edges
from kit.prompts import REASONING_SYSTEM_PROMPT

_ANNOTATION = re.compile(r"<<[^<>]*>>")
_FINAL_LINE = re.compile(r"^[ \t]*####[ \t]*(.*?)[ \t]*$", re.MULTILINE)
# A number with optional sign and thousands separators (1,080 / 109,200,000), or a plain one, or .5
_NUMBER = re.compile(r"[-−–]?(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
_MINUS = {"−": "-", "–": "-"}
SPEC = Spec("gsm8k", required=(("question",), ("answer",)))


def strip_calculator_annotations(solution: str) -> str:
    """Remove GSM8K calculator annotations such as ``<<48/2=24>>`` (the result after them stays)."""
    return _ANNOTATION.sub("", solution)


def normalise_number(text: str) -> str | None:
    """The first number in ``text`` as a plain string: ``"$1,080"`` → ``"1080"``, ``"−3"`` → ``"-3"``."""
    match = _NUMBER.search(text.replace("\u00a0", " "))
    if match is None:
        return None
    number = match.group(0).replace(",", "")
    for dash, minus in _MINUS.items():
        number = number.replace(dash, minus)
    if number.startswith("-."):
        number = "-0" + number[1:]
    elif number.startswith("."):
        number = "0" + number
    return number


def extract_final_answer(solution: str) -> str | None:
    """The number on the last ``#### N`` line of a worked solution, or None if there is none.

    Handles thousands separators (``1,080`` → ``1080``), negatives, decimals, ``$`` and quotes (curly or
    straight) around the number. A ``####`` line without a number also gives None.
    """
    if not isinstance(solution, str):
        return None
    finals = _FINAL_LINE.findall(solution)
    if not finals:
        return None
    return normalise_number(finals[-1])


def _has_final_line(solution: str) -> bool:
    return bool(_FINAL_LINE.search(solution))


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
        if not _has_final_line(raw):
            return None, "no_final_answer", ()
        answer = extract_final_answer(raw)
        if answer is None:
            return None, "non_numeric_answer", ()
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
    ("non_numeric_answer"), duplicate questions. A load that keeps no row is a :class:`KitError`.
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
