"""The shared skeleton of the JSON loaders: walk the files, decode, parse rows, count what each row became.

A loader supplies ``convert(row) -> (record | None, skip_reason | None, fixes)``; this module does the
bookkeeping (rows read, invalid JSON, non-objects, duplicates across files) so every JSON loader reports
the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from kit.data.files import INVALID_JSON, find_files, iter_json_rows, read_text
from kit.data.report import FileReport, LoadReport
from kit.runinfo import record_data_file

Converter = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, str | None, tuple[str, ...]]]
JSON_SUFFIXES = (".json", ".jsonl")


def load_json_records(
    path: str | os.PathLike[str],
    kind: str,
    convert: Converter,
    key: Callable[[dict[str, Any]], Hashable] | None,
) -> tuple[Path, list[dict[str, Any]], list[FileReport]]:
    """Read every JSON/JSONL file under ``path``; returns (resolved path, kept records, per-file reports).

    ``key`` identifies duplicates (first occurrence kept, across all files); None keeps duplicates.
    """
    root, files = find_files(path, JSON_SUFFIXES, kind)
    seen: set[Hashable] = set()
    records: list[dict[str, Any]] = []
    reports: list[FileReport] = []
    for file in files:
        record_data_file(file)
        text, codec = read_text(file)
        report = FileReport(path=str(file), encoding=codec)
        for number, row in iter_json_rows(file, text):
            report.rows_read += 1
            if row is INVALID_JSON:
                report.skip("invalid_json")
                report.notes.setdefault("first_invalid_json_line", number)
                continue
            if not isinstance(row, dict):
                report.skip("not_an_object")
                report.notes.setdefault("first_non_object_row", number)
                continue
            record, reason, fixes = convert(row)
            if record is None:
                report.skip(reason or "invalid")
                continue
            if key is not None:
                identity = key(record)
                if identity in seen:
                    report.skip("duplicate")
                    continue
                seen.add(identity)
            for what in fixes:
                report.fix(what)
            records.append(record)
            report.rows_kept += 1
        report.check()
        reports.append(report)
    return root, records, reports


def to_dataset(records: list[dict[str, Any]], columns: list[str]) -> Any:
    """A ``datasets.Dataset`` of ``records`` with ``columns`` (an empty one keeps the columns)."""
    from datasets import Dataset

    if not records:
        return Dataset.from_dict({name: [] for name in columns})
    return Dataset.from_list(records)


def load_json_dataset(
    path: str | os.PathLike[str],
    kind: str,
    convert: Converter,
    *,
    key: Callable[[dict[str, Any]], Hashable] | None,
    columns: list[str],
    text_fields: tuple[str, ...],
    opening_field: str,
) -> tuple[Any, LoadReport]:
    """Everything a JSON loader does after defining its row converter: read, build the Dataset, report."""
    root, records, reports = load_json_records(path, kind, convert, key=key)
    dataset = to_dataset(records, columns)
    report = LoadReport(kind=kind, source=str(root), files=reports, text_fields=text_fields,
                        opening_field=opening_field, dataset=dataset)
    return dataset, report
