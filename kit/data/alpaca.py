"""Alpaca-style instruction data (``instruction``/``input``/``output``) from JSON or JSON Lines files.

Cleaning rules: every field is stripped at the edges (full-width spaces included); a leading ``输入：`` /
``输出：`` (full-width or ASCII colon) is removed from input / output respectively; a missing
``input`` becomes "". Skipped and counted: rows that are not objects, invalid JSONL lines (counted as
"invalid_json" with the first bad line number in the file's notes; a broken JSON *array* raises
:class:`KitError` instead since nothing after the error can be read), a missing instruction/output key,
list/object values, empty instruction/output, and exact duplicates. Records with ``{{name}}`` template
placeholders are kept and counted in the quality summary. Other keys are dropped.
"""

from __future__ import annotations

import os
from typing import Any

from kit.data.jsonrows import load_json_dataset
from kit.data.report import LoadReport
from kit.data.text import INPUT_PREFIX, OUTPUT_PREFIX, as_text, strip_edges, strip_prefix

COLUMNS = ["instruction", "input", "output"]


def clean_alpaca_record(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, tuple[str, ...]]:
    """One raw row → (clean record, None, fixes) or (None, skip reason, ())."""
    if "instruction" not in row or "output" not in row:
        return None, "missing_field", ()
    values = {name: as_text(row.get(name)) for name in COLUMNS}
    if any(v is None for v in values.values()):
        return None, "bad_field_type", ()
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
    fixes = tuple(
        name
        for name, hit in (("prefix_stripped", input_fixed or output_fixed), ("whitespace_stripped", trimmed))
        if hit
    )
    return {"instruction": instruction, "input": source, "output": output}, None, fixes


def load_alpaca(path: str | os.PathLike[str]) -> tuple[Any, LoadReport]:
    """Load a JSON list, a JSONL file or a folder of them into a Dataset with instruction/input/output."""
    return load_json_dataset(
        path, "alpaca", clean_alpaca_record, key=lambda r: (r["instruction"], r["input"], r["output"]),
        columns=COLUMNS, text_fields=("instruction", "input", "output"), opening_field="instruction",
    )
