"""Quality summary of a loaded dataset: duplicates left, empty fields, {{placeholders}}, lengths, balance, diversity.

Our users' own guidance: quality over quantity, diverse instructions, balanced categories, consistent
format. These numbers make each of those visible before training. Computed with pandas column operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kit.data.text import TEMPLATE_PLACEHOLDER

if TYPE_CHECKING:
    from kit.data.report import LoadReport


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


def quality_summary(report: LoadReport, tokenizer: Any = None, *, top: int = 5) -> dict[str, Any]:
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
            }
        )
        return out
    fields = [f for f in report.text_fields if f in dataset.column_names]
    cats = [f for f in report.category_fields if f in dataset.column_names]
    frame = dataset.select_columns(fields + [c for c in cats if c not in fields]).to_pandas()
    texts = {name: frame[name].astype("str") for name in fields}

    remaining = int(frame.duplicated(subset=fields).sum()) if fields else 0
    out["duplicates"] = {"skipped": skipped_dups, "remaining": remaining}
    out["empty_fields"] = {name: int((s.str.len() == 0).sum()) for name, s in texts.items()}
    has_placeholder = None
    for series in texts.values():
        hit = series.str.contains(TEMPLATE_PLACEHOLDER.pattern, regex=True)
        has_placeholder = hit if has_placeholder is None else (has_placeholder | hit)
    out["template_placeholders"] = int(has_placeholder.sum()) if has_placeholder is not None else 0
    out["chars"] = {name: _stats(s.str.len()) for name, s in texts.items()}
    if tokenizer is not None:
        import pandas as pd

        out["tokens"] = {}
        for name, s in texts.items():
            ids = tokenizer(s.tolist(), add_special_tokens=False)["input_ids"]
            out["tokens"][name] = _stats(pd.Series([len(x) for x in ids]))
    out["balance"] = {name: {str(k): int(v) for k, v in frame[name].value_counts().items()} for name in cats}
    if report.opening_field and report.opening_field in frame:
        openings = _openings(frame[report.opening_field])
        counts = openings.value_counts()
        out["diversity"] = {
            "field": report.opening_field,
            "distinct_openings": len(counts),
            "share": round(len(counts) / len(frame), 4),
            "top": [[str(k), int(v)] for k, v in counts.head(top).items()],
        }
    return out
