"""What a loader read, kept and skipped (per file and in total), plus a quality summary of what it kept.

The invariant ``rows_read == rows_kept + sum(skipped.values())`` holds for every file and for the totals;
:meth:`FileReport.check` enforces it and :class:`LoadReport` checks every file when it is built, so a loader
cannot lose a row without naming the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How many skipped rows per reason a file keeps for ``--show-skipped`` (where and a short preview).
SAMPLES_PER_REASON = 20

# Skip reasons used by the loaders (a loader may add its own; every one is a plain snake_case name).
SKIP_REASONS = {
    "invalid_json": "a JSONL line that is not valid JSON (the first line number is in the file's notes)",
    "not_an_object": "a JSON row that is not an object",
    "missing_field": "a required key is absent",
    "bad_field_type": "a field holds a list/object where text is expected",
    "empty_instruction": "instruction empty after stripping",
    "empty_question": "question empty after normalisation",
    "placeholder_question": "question is a placeholder such as 无 or N/A",
    "empty_answer": "answer empty after normalisation",
    "empty_output": "output empty after stripping (prefixes like 输出： removed first)",
    "empty_field": "prompt, chosen or rejected empty",
    "chosen_equals_rejected": "the preferred and the rejected answer are the same text",
    "unknown_role": "a conversation turn with a role the loader does not know (see the tags of a registry entry)",
    "bad_role_order": "turns that do not alternate user/assistant (system first, tool results after a tool call)",
    "ends_on_user": "a conversation whose last turn is not the assistant's",
    "empty_turn": "a conversation turn with no text (and no tool call)",
    "empty_conversation": "a conversation with no turns",
    "non_text_content": "a content part that is not text (images, audio)",
    "bad_tool_call": "a function_call turn or tool_calls entry that is not a JSON object with a name",
    "bad_tools": "a tools value that is not a JSON schema (list or object, or a string of one)",
    "prompt_mismatch": "chosen_messages and rejected_messages that differ before their last assistant turn",
    "prompt_not_on_user": "a preference prompt whose last turn is not the user's (or a tool result)",
    "no_final_answer": "a GSM8K solution without a '#### N' line",
    "non_numeric_answer": "a '#### ...' line with no number on it",
    "bad_row": "a CSV row with the wrong number of fields",
    "unclosed_quote": "a CSV row whose quote never closes (its first line; the line number is in the notes)",
    "duplicate": "same content as an earlier kept record",
    "missing_value": "a required cell is missing: NaN, None, inf or 'nan' as pandas writes an empty cell",
    "ambiguous_answer": "a '#### ...' line with several numbers (e.g. '3 apples and 4 pears')",
    "unreadable_answer": "a '#### ...' number the parser cannot read exactly (e.g. 2/0)",
    "weight_zero_turn": "an assistant turn with weight 0 (not to be trained) before a trained one",
}


@dataclass
class FileReport:
    """One input file: its codec, how many rows it had, kept, skipped (by reason) and fixed in place."""

    path: str
    encoding: str | None = None
    rows_read: int = 0
    rows_kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    fixed: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[tuple[str, str]]] = field(default_factory=dict, repr=False, compare=False)
    columns: list[str] = field(default_factory=list, repr=False, compare=False)  # the file's columns

    def skip(self, reason: str, count: int = 1, where: str | None = None, preview: Any = None) -> None:
        """Count ``count`` rows skipped for ``reason`` (zero counts are not recorded).

        ``where`` (e.g. ``"line 9"``, ``"row 3"``) and ``preview`` (the row, shortened) are kept for the
        first :data:`SAMPLES_PER_REASON` rows of each reason, for ``kit data report --show-skipped``.
        """
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(count)
            if where is not None:
                self.sample(reason, where, preview)

    def sample(self, reason: str, where: str, preview: Any = None) -> None:
        """Remember one skipped row (where it is, and a one-line preview) unless enough are kept already."""
        kept = self.samples.setdefault(reason, [])
        if len(kept) < SAMPLES_PER_REASON:
            kept.append((where, shorten(preview)))

    def fix(self, what: str, count: int = 1) -> None:
        """Count ``count`` kept rows that were changed (e.g. ``prefix_stripped``)."""
        if count:
            self.fixed[what] = self.fixed.get(what, 0) + int(count)

    def check(self) -> None:
        """Raise AssertionError unless rows_read == rows_kept + sum(skipped) (explicit, survives ``python -O``)."""
        total = self.rows_kept + sum(self.skipped.values())
        if self.rows_read != total:
            raise AssertionError(
                f"{self.path}: rows_read {self.rows_read} != rows_kept {self.rows_kept} + skipped {total - self.rows_kept}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: exactly path, encoding, rows_read, rows_kept, skipped."""
        return {
            "path": self.path,
            "encoding": self.encoding,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "skipped": dict(sorted(self.skipped.items())),
        }

    def details(self) -> dict[str, Any]:
        """What :meth:`to_dict` leaves out: rows fixed in place and notes (first bad line, ...)."""
        return {"path": self.path, "fixed": dict(sorted(self.fixed.items())), "notes": dict(self.notes)}


@dataclass
class LoadReport:
    """Per-file reports of one load plus what the quality summary looks at.

    ``text_fields`` get length statistics, ``category_fields`` get counts per value (balance) and
    ``opening_field`` gets the distinct-openings count (diversity). ``dataset`` is the loaded dataset.
    """

    kind: str
    source: str
    files: list[FileReport]
    text_fields: tuple[str, ...] = ()
    category_fields: tuple[str, ...] = ()
    opening_field: str | None = None
    dataset: Any = field(default=None, repr=False, compare=False)
    ignored_files: list[str] = field(default_factory=list)  # files in the folder the loader does not read
    unread_columns: list[str] = field(default_factory=list)  # columns found that no field reads

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Check the invariant for every file and for the totals (AssertionError if broken)."""
        for report in self.files:
            report.check()
        totals = self.totals
        if totals["rows_read"] != totals["rows_kept"] + sum(totals["skipped"].values()):
            raise AssertionError(f"{self.source}: totals do not add up: {totals}")
        if self.dataset is not None and len(self.dataset) != totals["rows_kept"]:
            raise AssertionError(
                f"{self.source}: dataset has {len(self.dataset)} rows, report says {totals['rows_kept']}"
            )

    @property
    def rows_read(self) -> int:
        """Rows read over all files."""
        return sum(f.rows_read for f in self.files)

    @property
    def rows_kept(self) -> int:
        """Rows kept over all files (the dataset's length)."""
        return sum(f.rows_kept for f in self.files)

    @property
    def skipped(self) -> dict[str, int]:
        """Skipped rows by reason, summed over files."""
        out: dict[str, int] = {}
        for report in self.files:
            for reason, count in report.skipped.items():
                out[reason] = out.get(reason, 0) + count
        return dict(sorted(out.items()))

    @property
    def fixed(self) -> dict[str, int]:
        """Kept-but-changed rows by kind of change, summed over files."""
        out: dict[str, int] = {}
        for report in self.files:
            for what, count in report.fixed.items():
                out[what] = out.get(what, 0) + count
        return dict(sorted(out.items()))

    @property
    def totals(self) -> dict[str, Any]:
        """``{"rows_read", "rows_kept", "skipped"}`` over all files."""
        return {"rows_read": self.rows_read, "rows_kept": self.rows_kept, "skipped": self.skipped}

    def file(self, name: str) -> FileReport:
        """The report of the file whose path ends with ``name`` (KeyError if none)."""
        for report in self.files:
            if report.path == name or report.path.endswith("/" + name):
                return report
        raise KeyError(name)

    def quality(self, tokenizer: Any = None, *, top: int = 5) -> dict[str, Any]:
        """Duplicates, empty fields, {{placeholders}}, lengths (chars; tokens with a tokenizer), balance, diversity."""
        from kit.data.quality import quality_summary

        return quality_summary(self, tokenizer=tokenizer, top=top)

    def to_dict(self, *, quality: bool = True, tokenizer: Any = None) -> dict[str, Any]:
        """The JSON form (JSON-serialisable).

        ``{"kind", "source", "files": [{path, encoding, rows_read, rows_kept, skipped}], "totals":
        {rows_read, rows_kept, skipped}, "fixed": {...}, "details": [{path, fixed, notes}], "quality": {...}}``;
        ``details`` lists only files with fixes or notes.
        """
        out: dict[str, Any] = {
            "kind": self.kind,
            "source": self.source,
            "files": [f.to_dict() for f in self.files],
            "totals": self.totals,
            "fixed": self.fixed,
            "details": [f.details() for f in self.files if f.fixed or f.notes],
            "ignored_files": list(self.ignored_files),
            "unread_columns": list(self.unread_columns),
        }
        if quality:
            out["quality"] = self.quality(tokenizer)
        return out

    def table(self) -> Any:
        """One row per file plus a TOTAL row, as a pandas DataFrame (renders as a table in notebooks)."""
        import pandas as pd

        rows = [
            {
                "file": f.path,
                "encoding": f.encoding or "",
                "rows_read": f.rows_read,
                "rows_kept": f.rows_kept,
                "skipped": _fmt_counts(f.skipped),
                "fixed": _fmt_counts(f.fixed),
            }
            for f in self.files
        ]
        rows.append(
            {
                "file": "TOTAL",
                "encoding": "",
                "rows_read": self.rows_read,
                "rows_kept": self.rows_kept,
                "skipped": _fmt_counts(self.skipped),
                "fixed": _fmt_counts(self.fixed),
            }
        )
        return pd.DataFrame(rows)

    def summary(self, *, quality: bool = True, tokenizer: Any = None) -> str:
        """The readable report: one line per file, skipped totals, then the quality summary."""
        lines = [f"{self.kind} data from {self.source}: kept {self.rows_kept} of {self.rows_read} rows"]
        for f in self.files:
            lines.append(
                f"  {f.path} [{f.encoding or '-'}]: read {f.rows_read}, kept {f.rows_kept}"
                + (f", skipped {_fmt_counts(f.skipped)}" if f.skipped else "")
                + (f", fixed {_fmt_counts(f.fixed)}" if f.fixed else "")
            )
        lines.append(f"  skipped in total: {_fmt_counts(self.skipped) or 'none'}")
        if self.ignored_files:
            lines.append(f"  files not read (not a data file this loader reads): {', '.join(self.ignored_files)}")
        if self.unread_columns:
            lines.append(
                f"  columns not read: {', '.join(map(str, self.unread_columns))} (map one with --columns FIELD=COLUMN)"
            )
        if quality and self.dataset is not None:
            lines.extend("  " + line for line in format_quality(self.quality(tokenizer)).splitlines())
        return "\n".join(lines)

    def skipped_rows(self, limit: int) -> dict[str, list[dict[str, str]]]:
        """Up to ``limit`` skipped rows per reason over all files: ``{reason: [{file, where, row}]}``."""
        out: dict[str, list[dict[str, str]]] = {}
        for report in self.files:
            for reason, rows in sorted(report.samples.items()):
                shown = out.setdefault(reason, [])
                for where, preview in rows[: max(0, limit - len(shown))]:
                    shown.append({"file": report.path, "where": where, "row": preview})
        return dict(sorted(out.items()))

    def format_skipped(self, limit: int) -> str:
        """Readable lines for :meth:`skipped_rows` (``kit data report --show-skipped N``)."""
        rows = self.skipped_rows(limit)
        if not rows:
            return "skipped rows: none"
        lines = [f"skipped rows (up to {limit} per reason):"]
        for reason, shown in rows.items():
            lines.append(f"  {reason} ({self.skipped.get(reason, len(shown))} in total):")
            lines.extend(f"    {r['file']}, {r['where']}: {r['row']}" for r in shown)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def shorten(value: Any, width: int = 160) -> str:
    """One line of at most ``width`` characters showing ``value`` (JSON for lists and objects)."""
    import json

    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))


def format_quality(quality: dict[str, Any]) -> str:
    """Readable lines for a quality summary (used by ``str(report)`` and the CLI)."""
    lines = [f"quality: {quality.get('records', 0)} records"]
    dups = quality.get("duplicates", {})
    lines.append(f"  duplicates: {dups.get('skipped', 0)} skipped, {dups.get('remaining', 0)} remaining")
    empty = {k: v for k, v in quality.get("empty_fields", {}).items() if v}
    lines.append(f"  empty fields: {_fmt_counts(empty) or 'none'}")
    lines.append(f"  records with {{{{placeholders}}}}: {quality.get('template_placeholders', 0)}")
    lines.append(
        f"  damaged source text: replacement_chars (U+FFFD) {quality.get('replacement_chars', 0)}, "
        f"mojibake (e.g. Ã©) {quality.get('mojibake', 0)}"
    )
    for unit in ("chars", "tokens"):
        for name, stats in quality.get(unit, {}).items():
            lines.append(
                f"  {name} {unit}: min {stats['min']}, mean {stats['mean']}, p50 {stats['p50']}, "
                f"p95 {stats['p95']}, max {stats['max']}"
            )
    for name, counts in quality.get("balance", {}).items():
        shown = list(counts.items())[:8]
        more = f" (+{len(counts) - 8} more)" if len(counts) > 8 else ""
        lines.append(f"  balance by {name}: " + ", ".join(f"{k}={v}" for k, v in shown) + more)
    div = quality.get("diversity")
    if div:
        top = ", ".join(f"{o!r}×{n}" for o, n in div["top"])
        lines.append(
            f"  diversity of {div['field']}: {div['distinct_openings']} distinct openings "
            f"({div['share']:.0%} of records); most common: {top}"
        )
    return "\n".join(lines)
