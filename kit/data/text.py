"""Shared text clean-up: edge stripping (U+3000 included), space collapsing, placeholders, field prefixes.

These are the per-string forms (the JSON loaders see one record at a time); :mod:`kit.data.arrowtext`
applies the same rules to whole Arrow columns for the medical loader.
"""

from __future__ import annotations

import re
from typing import Any

# Characters stripped at the edges and collapsed inside: ASCII space/tab, ideographic space, NBSP, BOM.
_SPACE_CLASS = "[ \t\u3000\u00a0\ufeff]"
_SPACE_RUN = re.compile(_SPACE_CLASS + "+")
_SPACE_AROUND_NEWLINE = re.compile(" ?\n ?")
EDGE_CHARS = " \t\r\n\u3000\u00a0\ufeff\u200b"

# Questions that say nothing: skipped as "placeholder_question" (compared lower-cased, after normalisation).
PLACEHOLDERS = frozenset(
    {
        "无", "空", "暂无", "没有", "无内容", "略", "见图", "同上",
        "n/a", "na", "none", "null", "nan", "nil", "tbd",
        "-", "--", "---", "—", "——", "/", ".", "。", "...", "…", "……",
        "?", "？", "??", "？？", "!", "！", "0",
    }
)  # fmt: skip

_LONGEST_PLACEHOLDER = max(map(len, PLACEHOLDERS))

# Template placeholders such as {{name}} left in a record by whoever generated it.
TEMPLATE_PLACEHOLDER = re.compile(r"\{\{\s*[^{}\s]+\s*\}\}")

# Field prefixes some Chinese alpaca sets put in front of input/output (full-width or ASCII colon).
# English 'Input:' is left alone: in English data it is more often content than a stray label.
INPUT_PREFIX = re.compile(r"^输入\s*[:：]\s*")
OUTPUT_PREFIX = re.compile(r"^输出\s*[:：]\s*")

_CJK_START = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]")


def strip_edges(value: str) -> str:
    """Strip whitespace at both ends, including full-width spaces (U+3000), NBSP, BOM and zero-width space."""
    return value.strip(EDGE_CHARS)


def normalise_text(value: str) -> str:
    """Collapse runs of spaces (keeping newlines, CRLF → LF), drop spaces around newlines, strip the edges."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _SPACE_RUN.sub(" ", value)
    value = _SPACE_AROUND_NEWLINE.sub("\n", value)
    return strip_edges(value)


def is_placeholder(value: str) -> bool:
    """True if ``value`` (already normalised) is one of the :data:`PLACEHOLDERS`."""
    return value.lower() in PLACEHOLDERS


def strip_prefix(value: str, pattern: re.Pattern[str]) -> tuple[str, bool]:
    """Remove a leading field prefix (e.g. ``输入：``); returns the text and whether it changed."""
    stripped = pattern.sub("", value, count=1)
    return stripped, stripped != value


def has_template_placeholder(value: str) -> bool:
    """True if ``value`` contains a ``{{name}}``-style placeholder."""
    return TEMPLATE_PLACEHOLDER.search(value) is not None


def opening(value: str) -> str:
    """How an instruction starts, for the diversity count: first 4 characters of Chinese text, else 2 words."""
    value = value.strip()
    if _CJK_START.match(value):
        return "".join(value.split())[:4]
    return " ".join(value.lower().split()[:2])


# How pandas and friends write an empty cell into JSON/CSV text ("nan", "inf", "<NA>", "NaT"); json.dump of a
# DataFrame writes the bare literals NaN/Infinity, which Python's json reads as floats.
MISSING_TEXTS = frozenset({"nan", "NaN", "NAN", "inf", "-inf", "Infinity", "-Infinity", "<NA>", "NaT"})


def is_missing(value: Any) -> bool:
    """True for a value that stands for an empty cell: None, a NaN/infinite float, or a :data:`MISSING_TEXTS` string."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, str):
        return len(value) <= 9 and value.strip() in MISSING_TEXTS
    return False


def clear_missing(value: Any) -> tuple[Any, bool]:
    """``value`` with every missing cell (:func:`is_missing`, at any depth) replaced by None; and whether any was.

    The one place every row loader reads missing values: a NaN never becomes the text "nan".
    """
    if isinstance(value, dict):
        changed = False
        out = {}
        for key, item in value.items():
            if item is not None and is_missing(item):
                out[key], changed = None, True
            elif isinstance(item, dict | list):
                out[key], hit = clear_missing(item)
                changed = changed or hit
            else:
                out[key] = item
        return (out, True) if changed else (value, False)
    if isinstance(value, list):
        items = [clear_missing(item) if isinstance(item, dict | list) else
                 ((None, True) if item is not None and is_missing(item) else (item, False)) for item in value]
        if any(hit for _, hit in items):
            return [item for item, _ in items], True
        return value, False
    return (None, True) if value is not None and is_missing(value) else (value, False)


def as_text(value: Any) -> str | None:
    """A JSON field as text: strings as is, numbers as their decimal form, None as ''; lists/objects → None."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and is_missing(value):
        return ""
    if isinstance(value, int | float):
        return str(value)
    return None
