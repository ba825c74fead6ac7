"""Alpaca-style instruction data (``instruction``/``input``/``output``, optional ``system``/``history``).

Any source :mod:`kit.data.sources` reads (JSON/JSONL/CSV/parquet/Arrow, a save_to_disk folder, a hub id, a
registry entry); ``columns={"instruction": "question", "output": "answer"}`` maps other column names.

Cleaning rules: every field is stripped at the edges (full-width spaces included); a leading ``输入：`` /
``输出：`` (full-width or ASCII colon) is removed from input / output respectively; a missing
``input`` becomes "". ``system`` (a string) and ``history`` (a list of ``[instruction, response]`` pairs, the
earlier turns) are kept: the dataset has ``system`` and ``history`` columns when any kept record carries one,
and :func:`kit.formatting.prompts.to_messages` makes them the system message and the earlier turns. Skipped and counted:
rows that are not objects, invalid JSONL lines (counted as "invalid_json" with the first bad line number in the
file's notes; a broken JSON *array* raises :class:`KitError` instead since nothing after the error can be
read), a missing instruction/output key, list/object values where text belongs, a malformed history
("bad_field_type") or a history pair with an empty side ("empty_turn"), empty instruction/output, and exact
duplicates. Records with ``{{name}}`` template placeholders are kept and counted in the quality summary.
Other keys are dropped. A load that keeps no row is a :class:`KitError` naming the mapping that fixes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from kit.data.report import LoadReport
from kit.data.sources import Spec, build_report, load_records, resolve
from kit.data.text import INPUT_PREFIX, OUTPUT_PREFIX, as_text, strip_edges, strip_prefix

COLUMNS = ["instruction", "input", "output"]
EXTRA_COLUMNS = ["system", "history"]
SPEC = Spec("alpaca", required=(("instruction",), ("output",)), optional=("input", "system", "history"))


def _history(value: Any) -> list[list[str]] | str:
    """A history value as ``[[instruction, response], ...]`` or a skip reason."""
    if value is None or value == "":
        return []
    if isinstance(value, str) and value.lstrip().startswith("["):  # a CSV cell holding the JSON list
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return "bad_field_type"
    if not isinstance(value, list):
        return "bad_field_type"
    pairs = []
    for pair in value:
        if isinstance(pair, dict):
            pair = [pair.get("instruction", pair.get("user")), pair.get("output", pair.get("assistant"))]
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            return "bad_field_type"
        texts = [as_text(part) for part in pair]
        if any(t is None for t in texts):
            return "bad_field_type"
        question, answer = (strip_edges(t or "") for t in texts)
        if not question or not answer:
            return "empty_turn"
        pairs.append([question, answer])
    return pairs


def clean_alpaca_record(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, tuple[str, ...]]:
    """One raw row → (clean record, None, fixes) or (None, skip reason, ())."""
    if "instruction" not in row or "output" not in row:
        return None, "missing_field", ()
    values = {name: as_text(row.get(name)) for name in [*COLUMNS, "system"]}
    if any(v is None for v in values.values()):
        return None, "bad_field_type", ()
    history = _history(row.get("history"))
    if isinstance(history, str):
        return None, history, ()
    instruction = strip_edges(values["instruction"])
    edged_input, edged_output = strip_edges(values["input"]), strip_edges(values["output"])
    trimmed = (instruction, edged_input, edged_output) != (
        values["instruction"],
        values["input"],
        values["output"],
    )
    source, input_fixed = strip_prefix(edged_input, INPUT_PREFIX)
    output, output_fixed = strip_prefix(edged_output, OUTPUT_PREFIX)
    source, output = strip_edges(source), strip_edges(output)
    if not instruction:
        return None, "empty_instruction", ()
    if not output:
        return None, "empty_output", ()
    system = strip_edges(values["system"])
    fixes = tuple(
        name
        for name, hit in (
            ("prefix_stripped", input_fixed or output_fixed),
            ("whitespace_stripped", trimmed),
            ("system_kept", bool(system)),
            ("history_kept", bool(history)),
        )
        if hit
    )
    record = {
        "instruction": instruction,
        "input": source,
        "output": output,
        "system": system,
        "history": history,
    }
    return record, None, fixes


def _key(record: dict[str, Any]) -> Any:
    history = tuple(tuple(pair) for pair in record["history"])
    return record["instruction"], record["input"], record["output"], record["system"], history


def load_alpaca(
    path: str | os.PathLike[str],
    columns: Mapping[str, str] | str | None = None,
    *,
    config: str | None = None,
    split: str | None = None,
) -> tuple[Any, LoadReport]:
    """Load instruction records (see the module doc) into instruction/input/output [+ system/history] columns."""
    from kit.data.registry import note_unsupported

    where = resolve(path, "alpaca", columns, config, split)
    label, records, reports, found = load_records(
        where.path,
        SPEC,
        clean_alpaca_record,
        key=_key,
        columns=where.columns,
        config=where.config,
        split=where.split,
    )
    keep = [c for c in EXTRA_COLUMNS if any(r[c] for r in records)]
    drop = [c for c in EXTRA_COLUMNS if c not in keep]
    for record in records:
        for name in drop:
            del record[name]
    dataset, report = build_report(
        label,
        SPEC,
        records,
        reports,
        found,
        where.columns,
        text_fields=("instruction", "input", "output"),
        opening_field="instruction",
    )
    note_unsupported(report, path)
    return dataset, report
