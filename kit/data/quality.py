"""Quality summary of a loaded dataset: duplicates left, empty fields, {{placeholders}}, damaged text, lengths,
balance, diversity.

Our users' own guidance: quality over quantity, diverse instructions, balanced categories, consistent
format. These numbers make each of those visible before training. Computed with pandas column operations.
Damage that came in with the source is counted under its own name: ``replacement_chars`` (records holding
U+FFFD, left where a codec failed upstream) and ``mojibake`` (UTF-8 read as Latin-1/cp1252, e.g. ``Ã©``,
``â€™``). Message-list columns (chat records, conversational preference pairs) count their turns' text.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from kit.data.text import TEMPLATE_PLACEHOLDER

REPLACEMENT_CHAR = "\ufffd"
# UTF-8 bytes decoded as Latin-1 or cp1252: Ã/Â before a continuation-range character, or the â€ of quotes.
MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]|\u00e2\u20ac")


def _messages_text(value: Any, first_user: bool = False) -> str:
    """The text of a message list (all turns joined, or the first user turn); other values as str."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    turns = list(value) if not isinstance(value, dict) else [value]
    texts = [str(t.get("content") or "") for t in turns if isinstance(t, dict)]
    if first_user:
        users = [
            str(t.get("content") or "") for t in turns if isinstance(t, dict) and t.get("role") == "user"
        ]
        return users[0] if users else (texts[0] if texts else "")
    return "\n".join(texts)


def _as_text(series: Any, first_user: bool = False) -> Any:
    """A column as strings: message lists become their text (per row: chat sets are small), others ``str``."""
    sample = next((v for v in series if v is not None), "")
    if isinstance(sample, str):
        return series.astype("str")
    return series.map(lambda v: _messages_text(v, first_user)).astype("str")


def _stats(values: Any) -> dict[str, Any]:
    if len(values) == 0:
        return {"min": 0, "mean": 0.0, "p50": 0, "p95": 0, "max": 0}
    return {
        "min": int(values.min()),
        "mean": round(float(values.mean()), 1),
        "p50": int(values.quantile(0.5, interpolation="nearest")),
        "p95": int(values.quantile(0.95, interpolation="nearest")),
        "max": int(values.max()),
    }


def _openings(series: Any) -> Any:
    """Vectorised :func:`kit.data.text.opening`: first 4 characters of Chinese text, else the first 2 words."""
    import pandas as pd

    text = series.astype("str").str.strip()
    cjk = text.str.match("[\u3400-\u9fff\uf900-\ufaff]")  # literal characters: RE2 has no \\u escapes
    cjk_open = text.str.replace(r"\s+", "", regex=True).str.slice(0, 4)
    words = text.str.lower().str.extract(r"^(\S+(?:\s+\S+)?)", expand=False).fillna("")
    latin_open = words.str.replace(r"\s+", " ", regex=True)
    return pd.Series(cjk_open.where(cjk, latin_open), index=series.index)


class ReportView(Protocol):
    """What the summary reads of a :class:`kit.data.report.LoadReport` (which calls it, so it cannot import it)."""

    dataset: Any
    skipped: dict[str, int]
    text_fields: tuple[str, ...]
    category_fields: tuple[str, ...]
    opening_field: str | None


def quality_summary(report: ReportView, tokenizer: Any = None, *, top: int = 5) -> dict[str, Any]:
    """The quality section of :meth:`LoadReport.to_dict` (token lengths only when ``tokenizer`` is given)."""
    dataset = report.dataset
    skipped_dups = report.skipped.get("duplicate", 0)
    out: dict[str, Any] = {"records": 0 if dataset is None else len(dataset)}
    if dataset is None or len(dataset) == 0:
        out.update(
            {
                "duplicates": {"skipped": skipped_dups, "remaining": 0},
                "empty_fields": {},
                "template_placeholders": 0,
                "replacement_chars": 0,
                "mojibake": 0,
            }
        )
        return out
    fields = [f for f in report.text_fields if f in dataset.column_names]
    cats = [f for f in report.category_fields if f in dataset.column_names]
    frame = dataset.select_columns(fields + [c for c in cats if c not in fields]).to_pandas()
    texts = {name: _as_text(frame[name]) for name in fields}

    import pandas as pd

    remaining = int(pd.DataFrame(texts).duplicated().sum()) if fields else 0
    out["duplicates"] = {"skipped": skipped_dups, "remaining": remaining}
    out["empty_fields"] = {name: int((s.str.len() == 0).sum()) for name, s in texts.items()}
    has_placeholder = None
    for series in texts.values():
        hit = series.str.contains(TEMPLATE_PLACEHOLDER.pattern, regex=True)
        has_placeholder = hit if has_placeholder is None else (has_placeholder | hit)
    out["template_placeholders"] = int(has_placeholder.sum()) if has_placeholder is not None else 0
    out["replacement_chars"] = _records_matching(dataset, texts, REPLACEMENT_CHAR, regex=False)
    out["mojibake"] = _records_matching(dataset, texts, MOJIBAKE.pattern, regex=True)
    out["chars"] = {name: _stats(s.str.len()) for name, s in texts.items()}
    if tokenizer is not None:
        out["tokens"] = {}
        for name, s in texts.items():
            ids = tokenizer(s.tolist(), add_special_tokens=False)["input_ids"]
            out["tokens"][name] = _stats(pd.Series([len(x) for x in ids]))
    out["balance"] = {name: {str(k): int(v) for k, v in frame[name].value_counts().items()} for name in cats}
    if report.opening_field and report.opening_field in frame:
        openings = _openings(_as_text(frame[report.opening_field], first_user=True))
        counts = openings.value_counts()
        out["diversity"] = {
            "field": report.opening_field,
            "distinct_openings": len(counts),
            "share": round(len(counts) / len(frame), 4),
            "top": [[str(k), int(v)] for k, v in counts.head(top).items()],
        }
    return out


def _records_matching(dataset: Any, texts: dict[str, Any], pattern: str, *, regex: bool) -> int:
    """How many records have ``pattern`` in any of their text fields (Arrow kernels for string columns)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    hit = np.zeros(len(dataset), dtype=bool)
    table = dataset.data.table
    for name, series in texts.items():
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            found = (
                pc.match_substring_regex(column, pattern) if regex else pc.match_substring(column, pattern)
            )
            hit |= pc.fill_null(found, False).to_numpy(zero_copy_only=False)
        else:
            hit |= series.str.contains(pattern, regex=regex).to_numpy()
    return int(hit.sum())
