"""THE number parser of the kit: loaders, rewards and evaluation read numbers here, exactly, never by ``eval``.

``1,080``, ``$1,080.``, ``1080.0``, ``１０８０``, ``−1080`` (U+2212), ``١٠٨٠`` (Arabic-Indic digits) all parse to
the same exact :class:`~fractions.Fraction`, so rewards compare values rather than strings or floats. Forms read:

- digits of any script (``\\d``: ASCII, full-width, Arabic-Indic, Devanagari, ...);
- thousands groups ``1,080`` / ``１，０８０`` / ``1 000`` (no-break or thin space), Indian ``1,00,000``;
- decimals ``2.5``, ``.5``, a decimal comma ``3,5`` (one or two digits after it, else it groups thousands);
- fractions ``3/4``, mixed numbers ``1 1/2``, scientific ``1e6`` / ``2.5E-3``, a sign ``-`` / ``−`` and ``$``.

Two ways to read:

- :func:`last_number` / :func:`first_number`: a token in free text (a model's reasoning);
- :func:`read_answer`: a final answer (the text of a ``#### N`` line, a reference string). Here the whole text
  must hold exactly one number (words and markdown around it are fine), and ``1 000`` or ``- 5`` are read too;
  anything else is an :class:`Unreadable` reason (``non_numeric_answer``, ``ambiguous_answer``,
  ``unreadable_answer``), never a truncated number. :func:`final_answer` picks the ``####`` line of a worked
  solution; the GSM8K loader and :func:`reference_value` both use it, so they agree on every reference.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache
from typing import Any

_COMMA = "[,，٬]"
_DOT = "[.．٫]"
_GROUP_SPACE = "[\u00a0\u202f\u2009]"  # no-break, narrow no-break and thin space: only ever group digits
_START = r"(?<![\d.．٫])"
# A sign counts only when it does not join two words or numbers ("10-3" is a subtraction, not -3).
_SIGN = r"(?<![\dA-Za-z])[-−－﹣]"
_GROUPED = (
    rf"\d{{1,2}}(?:{_COMMA}\d{{2}})+{_COMMA}\d{{3}}(?!\d)"  # Indian grouping 1,00,000
    rf"|\d{{1,3}}(?:{_COMMA}\d{{3}})+(?!\d)"  # 1,080 / 109,200,000
    rf"|\d{{1,3}}(?:{_GROUP_SPACE}\d{{3}})+(?!\d)"  # 1 000 with a no-break or thin space
)
_DECIMAL_COMMA = r"(?<!\d[,，])\d+,\d{1,2}(?![\d,])"  # 3,5 and 2,75 (a list such as 1,2,3 stays three numbers)
_SCIENTIFIC = rf"(?:\d+(?:{_DOT}\d+)?|{_DOT}\d+)[eE][-+]?\d{{1,3}}(?!\d)"
_CORE = rf"(?:{_GROUPED}|\d+)(?:{_DOT}\d+)?|(?<!\d){_DOT}\d+"
_FRACTION = r"(?:[ \t]?[/／][ \t]?\d+(?![\d.．]))"
_MIXED = r"\d+[ \u00a0]\d+[ \t]?[/／][ \t]?\d+(?![\d.．])"
# One number: optional sign (and "-$7"), then a mixed number, scientific form, decimal comma, or digits with
# optional thousands groups and decimals, optionally over a denominator (a/b).
NUMBER_RE = re.compile(
    rf"(?:{_SIGN}[$＄]?)?{_START}(?:{_MIXED}|{_SCIENTIFIC}|{_DECIMAL_COMMA}|(?:{_CORE}){_FRACTION}?)"
)

# Every character a token can hold; in the reversed text a run starts at a digit (the original's last digit).
_RUN = "\\d,，.．٫٬$＄/／ \t\u00a0\u202f\u2009eE+\\-−－﹣"
_REVERSED_RUN = re.compile(f"\\d[{_RUN}]*")

# Full-width ASCII, Unicode minus signs, ideographic space and Arabic separators -> ASCII; other scripts' digits
# go through unicodedata. Then thousands separators, "$" and blanks are dropped.
_TO_ASCII = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_TO_ASCII.update({0x2212: ord("-"), 0xFE63: ord("-"), 0x3000: ord(" "), 0x066B: ord("."), 0x066C: ord(","),
                  0x00A0: ord(" "), 0x202F: ord(" "), 0x2009: ord(" ")})
_OTHER_DIGIT = re.compile(r"(?![0-9])\d")
_DROP = str.maketrans({",": None, "$": None, " ": None, "\t": None})
_MAX_TOKEN = 100  # longer "numbers" are noise (or an attack on int parsing), never an answer
_MIXED_ASCII = re.compile(r"(-?)\$?(\d+) (\d+) ?/ ?(\d+)")
_DECIMAL_COMMA_ASCII = re.compile(r"-?\$?\d+,\d{1,2}")


def to_ascii(text: str) -> str:
    """``text`` with full-width characters, minus signs, special spaces and every script's digits in ASCII."""
    if text.isascii():
        return text
    text = text.translate(_TO_ASCII)
    if text.isascii():
        return text
    return _OTHER_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group())), text)


@lru_cache(maxsize=16384)
def token_value(token: str | None) -> Fraction | None:
    """The exact value of one number token found by :data:`NUMBER_RE` (``"$1,080."`` -> 1080), else None."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    ascii_token = to_ascii(token).strip().rstrip(".")
    try:
        mixed = _MIXED_ASCII.fullmatch(ascii_token)
        if mixed:
            sign, whole, num, den = mixed.groups()
            if int(num) >= int(den):  # "1 000/2" is not a mixed number
                return None
            value = int(whole) + Fraction(int(num), int(den))
            return -value if sign else value
        if _DECIMAL_COMMA_ASCII.fullmatch(ascii_token):
            ascii_token = ascii_token.replace(",", ".")
        clean = ascii_token.translate(_DROP)
        if "/" in clean:
            num, den = clean.split("/", 1)
            return Fraction(num) / Fraction(den)
        if "." in clean or "e" in clean or "E" in clean:  # Decimal parses exactly and in C
            return Fraction(*Decimal(clean).as_integer_ratio())
        return Fraction(int(clean))
    except (ValueError, ZeroDivisionError, ArithmeticError, InvalidOperation):
        return None


def format_value(value: Fraction) -> str:
    """A plain string for an exact value: ``1080``, ``-2.5``, ``1/3`` (decimals where they terminate)."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos_fives = den
    for p in (2, 5):
        while twos_fives % p == 0:
            twos_fives //= p
    if twos_fives != 1:
        return f"{value.numerator}/{den}"
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    return f"{Decimal(value.numerator) / Decimal(den):.{places}f}"


def first_number(text: str) -> str | None:
    """The first number token in ``text``, or None."""
    match = NUMBER_RE.search(text)
    return match.group() if match else None


def last_number(text: str) -> str | None:
    """The last number token in ``text`` (the usual fallback for an unmarked final answer), or None.

    Same result as ``NUMBER_RE.findall(text)[-1]`` but about 10x faster on long text: a token only holds
    characters of ``_RUN``, so it is searched for only in the last run of such characters that holds a digit
    (found by scanning the reversed text), plus one character of context on each side for the look-arounds.
    """
    reverse = text[::-1]
    size = len(text)
    start = 0
    while True:
        run = _REVERSED_RUN.search(reverse, start)
        if run is None:
            return None
        tokens = NUMBER_RE.findall(text, max(0, size - run.end() - 1), size - run.start() + 1)
        if tokens:
            return tokens[-1]
        start = run.end()


def parse_number(text: Any) -> Fraction | None:
    """The value of the last number in ``text`` (a str); None when there is none or ``text`` is not a str."""
    if not isinstance(text, str):
        return None
    return token_value(last_number(text))


# -- Final answers: the whole text is one number ------------------------------------------------------------

_LATEX_FRAC = re.compile(r"\\d?frac\{\s*([^{}]*?)\s*\}\{\s*([^{}]*?)\s*\}")
_SPACE_GROUPS = re.compile(r"(?<![\d.,])(\d{1,3})((?: \d{3})+)(?![\d/]| \d)")
_SIGN_SPACE = re.compile(r"^([^\w\d]*?)[-−－﹣–]\s+(?=[$＄]?\d)")
_HAS_DIGIT = re.compile(r"\d")


class Unreadable(str):
    """Why a final answer could not be read: ``no_final_answer``, ``non_numeric_answer``, ``ambiguous_answer``
    or ``unreadable_answer`` (a skip reason for the loader)."""


def _answer_text(text: str) -> str:
    """A final answer's text with LaTeX fractions as a/b, space-grouped thousands joined and ``- 5`` as ``-5``."""
    text = _LATEX_FRAC.sub(r"\1/\2", text.strip())
    text = _SIGN_SPACE.sub(r"\1-", text)
    return _SPACE_GROUPS.sub(lambda m: m.group(1) + m.group(2).replace(" ", ""), to_ascii(text))


def read_answer(text: str) -> tuple[Fraction | None, Unreadable | None, str | None]:
    """(value, None, token) when ``text`` (a final answer) holds exactly one readable number, else
    (None, reason, None). Words and markdown around the number are fine (``**18** eggs``)."""
    if not isinstance(text, str) or len(text) > 10_000:
        return None, Unreadable("unreadable_answer"), None
    body = _answer_text(text)
    tokens = [m for m in NUMBER_RE.finditer(body)]
    if not tokens:
        return None, Unreadable("non_numeric_answer"), None
    leftover = _outside(body, tokens)
    if len(tokens) > 1 or _HAS_DIGIT.search(leftover):
        return None, Unreadable("ambiguous_answer"), None
    value = token_value(tokens[0].group())
    if value is None:
        return None, Unreadable("unreadable_answer"), None
    return value, None, tokens[0].group()


def _outside(body: str, tokens: list[re.Match[str]]) -> str:
    parts, position = [], 0
    for match in tokens:
        parts.append(body[position : match.start()])
        position = match.end()
    parts.append(body[position:])
    return "".join(parts)


_FINAL_LINE = re.compile(r"^[ \t]*####(?!#)[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_WORD_START = re.compile(r"^[\W_]*[^\W\d_]")  # starts with a letter (after markdown such as ** or _)


def final_lines(solution: str) -> list[str]:
    """The contents of every ``#### ...`` line of a worked solution (``#####`` headings are not such lines)."""
    return _FINAL_LINE.findall(solution) if isinstance(solution, str) else []


def final_answer(solution: Any) -> tuple[Fraction | None, Unreadable | None]:
    """The value of a worked solution's final answer, its last ``#### N`` line, or (None, reason).

    A ``####`` line that reads as a markdown heading (it starts with a word: ``#### Step 2``) is passed over
    when an answer line (starting with the number, a sign, ``$`` or a quote) exists; markdown after the
    answer line does not matter. No ``####`` line: ``no_final_answer``; none with a number:
    ``non_numeric_answer``; an answer line with several numbers: ``ambiguous_answer``.
    """
    lines = [line for line in final_lines(solution) if _HAS_DIGIT.search(line)]
    if not lines:
        return None, Unreadable("non_numeric_answer" if final_lines(solution) else "no_final_answer")
    answers = [line for line in lines if not _WORD_START.match(line)]
    value, reason, _ = read_answer((answers or lines)[-1])
    return value, reason


def answer_string(value: Fraction) -> str:
    """The answer column's text for an exact value (what rewards read back to the same value)."""
    return format_value(value)


@lru_cache(maxsize=16384)
def _reference_from_str(text: str) -> Fraction | None:
    if "####" in text:
        return final_answer(text)[0]
    value, _, _ = read_answer(text)
    return value if value is not None else token_value(last_number(text))


def reference_value(answer: Any) -> Fraction | None:
    """The exact value of a reference answer: a number, a numeric string or a GSM8K solution (``#### N``).

    Strings are read as the GSM8K loader reads them (:func:`final_answer`, :func:`read_answer`), so a loaded
    ``answer`` column and the raw solution give the same value. Returns None for anything else (None, bool,
    NaN, lists, dicts, text without a number).
    """
    if isinstance(answer, str):
        return _reference_from_str(answer) if len(answer) < 100_000 else None
    if isinstance(answer, bool):
        return None
    if isinstance(answer, (int, Fraction)):
        return Fraction(answer)
    if isinstance(answer, float):
        return Fraction(repr(float(answer))) if math.isfinite(answer) else None  # 0.1 -> 1/10, not binary
    if isinstance(answer, Decimal):
        return Fraction(answer) if answer.is_finite() else None
    if isinstance(answer, numbers.Integral):  # numpy / torch integer scalars
        return Fraction(int(answer))
    return None


def region_token(region: str, pick: str = "last") -> str | None:
    """The answer token of a marked answer region (after ``####``, ``最终答案：``, inside ``<answer>``): the one
    number :func:`read_answer` finds there (so ``1 000`` and ``- 5`` read as the loader reads them), else the
    first or last token (``pick``)."""
    value, _, _token = read_answer(region)
    if value is not None:
        return format_value(value)
    return first_number(region) if pick == "first" else last_number(region)
