"""Where a ``data_path`` points, and the one read-validate-report step every row loader runs on it.

A ``data_path`` may be:

- a local JSON / JSON Lines / CSV file (any codec :mod:`kit.data.files` decodes), a parquet file, an Arrow file
  (IPC file or stream, as ``datasets`` writes them), or a folder of such files;
- a ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` folder (it has ``state.json`` or ``dataset_dict.json``);
- a hub dataset id with optional config and split, ``openai/gsm8k:main:train`` (or ``config=``/``split=``),
  read through ``datasets.load_dataset``; offline it fails with one :class:`KitError` saying how to use a copy;
- ``registry:dataset_info.json:NAME``, a LLaMA-Factory registry entry (:mod:`kit.data.registry`).

Whatever the source, rows go through the loader's converter, the column mapping, duplicate detection and the
:class:`LoadReport` invariant, and a load that keeps no row is a :class:`KitError` naming the fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.data.report import FileReport, LoadReport
from kit.data.text import clear_missing
from kit.errors import KitError

Converter = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, str | None, tuple[str, ...]]]

ROW_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet", ".arrow")
# Files a folder walk never reads as data: save_to_disk metadata and a LLaMA-Factory registry.
METADATA_NAMES = frozenset({"dataset_info.json", "state.json", "dataset_dict.json"})
REGISTRY_PREFIX = "registry:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(?:/[\w.\-]+)?$")
_BATCH = 1000
# A row skipped for one of these reasons because a cell was missing (NaN, None, "nan") counts as missing_value.
_EMPTY_REASONS = frozenset({"missing_field", "empty_instruction", "empty_output", "empty_field", "empty_turn",
                            "empty_question", "empty_answer", "empty_conversation", "no_final_answer"})

# Column names a user's file often has instead of the canonical one (used only to suggest a mapping).
ALIASES: dict[str, tuple[str, ...]] = {
    "instruction": ("instruction", "prompt", "question", "query", "problem", "ask", "text"),
    "input": ("input", "context", "query"),
    "output": ("output", "response", "answer", "completion", "target", "reply"),
    "question": ("question", "problem", "query", "prompt", "instruction", "ask", "input"),
    "answer": ("answer", "solution", "output", "response", "completion"),
    "prompt": ("prompt", "question", "instruction", "query", "input"),
    "chosen": ("chosen", "preferred", "response_chosen", "chosen_response", "better"),
    "rejected": ("rejected", "dispreferred", "response_rejected", "rejected_response", "worse"),
    "messages": ("messages", "conversations", "conversation", "dialog", "dialogue", "chat", "turns"),
    "conversations": ("conversations", "messages", "conversation", "dialog"),
    "chosen_messages": ("chosen_messages", "chosen_conversation"),
    "rejected_messages": ("rejected_messages", "rejected_conversation"),
    "system": ("system", "system_prompt"),
    "history": ("history",),
    "tools": ("tools", "functions"),
}


@dataclass
class RowFile:
    """One unit of input: a file (or a hub split) with its codec, and its rows as ``(number, value)``."""

    path: str
    encoding: str | None
    rows: Iterator[tuple[int, Any]]
    unit: str = "row"  # "line" for JSON Lines, "row" otherwise
    columns: list[str] = field(default_factory=list)  # known up front for tabular sources
    local: Path | None = None
    table: Any = None  # the Arrow table of a tabular source
    delimiter: str | None = None  # a CSV's field separator
    ignored: list[str] = field(default_factory=list)  # files in the folder that are not read (first file only)


@dataclass
class Spec:
    """What a loader accepts: required and optional canonical fields (for the mapping and the 0-row error)."""

    kind: str
    required: tuple[tuple[str, ...], ...]  # each tuple: one of these fields is needed
    optional: tuple[str, ...] = ()
    native: dict[str, tuple[str, ...]] = field(default_factory=dict)  # other names read without a mapping

    def names_for(self, name: str) -> tuple[str, ...]:
        """The column names (lower-case) that give field ``name`` without a mapping."""
        return (name, *self.native.get(name, ()))

    @property
    def accepted(self) -> tuple[str, ...]:
        names = [n for group in self.required for n in group] + list(self.optional)
        return tuple(dict.fromkeys(names))


# --- Parsing a data_path -------------------------------------------------------------------------------------


def split_hub_id(text: str) -> tuple[str, str | None, str | None] | None:
    """``"openai/gsm8k:main:train"`` → ``("openai/gsm8k", "main", "train")``; None if not shaped like a hub id."""
    parts = text.split(":")
    if len(parts) > 3 or not _HUB_ID.match(parts[0]):
        return None
    name = parts[0]
    config = parts[1] or None if len(parts) > 1 else None
    split = parts[2] or None if len(parts) > 2 else None
    return name, config, split


def is_local(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` names an existing file or folder (working directory, repository root or package data)."""
    from kit.paths import resolve_path

    return resolve_path(path).exists()


def parse_columns(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"instruction=question,output=answer"`` (or a dict) → ``{"instruction": "question", "output": "answer"}``."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return {str(k).strip(): str(v).strip() for k, v in text.items()}
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        canonical, sep, source = part.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise KitError(
                f"--columns {text!r}: {part!r} is not NAME=COLUMN; write e.g. --columns instruction=question,output=answer"
            )
        out[canonical.strip()] = source.strip()
    return out


def check_columns(columns: Mapping[str, str] | None, spec: Spec) -> dict[str, str]:
    """The mapping as a dict, after checking that every key is a field the loader knows."""
    mapping = parse_columns(columns)
    unknown = sorted(set(mapping) - set(spec.accepted))
    if unknown:
        raise KitError(
            f"columns mapping {mapping}: the {spec.kind} loader has no field {unknown}; its fields are "
            f"{list(spec.accepted)} (write columns={{FIELD: YOUR_COLUMN}})"
        )
    return mapping


def remap(row: dict[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """``row`` with each canonical field taken from its mapped column (a mapped column that is absent → field absent)."""
    if not columns:
        return row
    out = dict(row)
    for canonical, source in columns.items():
        if source in row:
            out[canonical] = row[source]
        else:
            out.pop(canonical, None)
    return out


# --- Reading rows from each kind of source --------------------------------------------------------------------


def open_rows(
    data_path: str | os.PathLike[str], kind: str, *, config: str | None = None, split: str | None = None
) -> tuple[str, list[RowFile]]:
    """(source label, the row files) for ``data_path``; see the module doc for what it may be."""
    from kit.paths import resolve_path

    text = os.fspath(data_path)
    if text.startswith(REGISTRY_PREFIX):
        raise KitError(f"{text}: resolve registry entries with kit.data.registry.resolve first")
    try:
        root: Path | None = resolve_path(text)
    except (RuntimeError, OSError):  # a symlink loop: find_files names it
        root = None
    if root is None or root.exists() or os.path.islink(text):
        if root is not None and root.is_dir() and _is_saved_dataset(root):
            return str(root), [_saved_dataset_rows(root, split)]
        found, paths = _walk(text, kind)
        rows = [_file_rows(file) for file in paths]
        if found.is_dir():
            from kit.data.files import not_read

            rows[0].ignored = not_read(found, ROW_SUFFIXES, METADATA_NAMES)
        return str(found), rows
    hub = split_hub_id(text)
    looks_local = text.startswith((".", "/", "~")) or text.count("/") > 1 or Path(text).suffix in ROW_SUFFIXES
    if hub is None or looks_local:
        raise KitError(
            f"{text}: no such file or folder (looked in the working directory, the repository root and the "
            "installed kit's data); give a JSON/JSONL/CSV/parquet/Arrow file, a folder of them, a "
            "save_to_disk folder or a hub dataset id such as openai/gsm8k:main:train"
        )
    name, hub_config, hub_split = hub
    return f"hub:{name}", [_hub_rows(name, config or hub_config, split or hub_split, text)]


def _walk(path: str, kind: str) -> tuple[Path, list[Path]]:
    """The data files ``path`` names (:func:`kit.data.files.find_files`), without save_to_disk/registry metadata."""
    from kit.data.files import find_files

    root, files = find_files(path, ROW_SUFFIXES, kind)
    if root.is_file():
        return root, files
    files = [p for p in files if p.name not in METADATA_NAMES]
    if not files:
        raise KitError(
            f"{root}: no {'/'.join(ROW_SUFFIXES)} data files in this folder (only {sorted(METADATA_NAMES)} metadata); "
            f"point the {kind} loader at a file or a folder of them"
        )
    return root, files


def _file_rows(file: Path) -> RowFile:
    from kit.runinfo import record_data_file

    record_data_file(file)
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        return _table_rows(str(file), _read_parquet(file), local=file)
    if suffix == ".arrow":
        return _table_rows(str(file), _read_arrow(file), local=file)
    if suffix in (".csv", ".tsv"):
        return _csv_rows(file)
    return _json_rows(file)


def _json_rows(file: Path) -> RowFile:
    from kit.data.files import iter_json_rows, read_text

    text, codec = read_text(file)
    unit = "row" if text.lstrip().startswith("[") else "line"
    return RowFile(str(file), codec, iter_json_rows(file, text), unit=unit, local=file)


def _csv_rows(file: Path) -> RowFile:
    """A CSV read as text columns by pyarrow (real quoting rules); rows numbered after the header.

    Parsing goes through :func:`kit.data.csvrows.read_csv_table` (fields of any size, no hang at exit); a row
    whose quote never closes is counted as a bad row named by its line, and the rows after it are read.
    """
    from kit.data.csvrows import read_csv_table, read_header
    from kit.data.files import decode_to_utf8

    codec, chunks = decode_to_utf8(file)
    header, delimiter = read_header(file, chunks[0] if chunks else b"")
    if not header:
        return RowFile(str(file), codec, iter(()), columns=[], local=file)
    parsed = read_csv_table(file, chunks, header, None, lambda: decode_to_utf8(file)[1], delimiter)
    bad = parsed.bad_rows + [
        f"line {line}: a quote opens in this row and never closes (the row was skipped; fix the quote)"
        for line in parsed.unclosed_quote_lines
    ]
    rows = _table_rows(str(file), parsed.table, encoding=codec, local=file)
    rows.rows = _with_bad_rows(rows.rows, bad)
    rows.delimiter = delimiter
    return rows


_BAD_ROW = object()


def _with_bad_rows(rows: Iterator[tuple[int, Any]], bad: list[str]) -> Iterator[tuple[int, Any]]:
    yield from rows
    for text in bad:
        yield 0, (_BAD_ROW, text)


def _read_parquet(file: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(file)
    except (pa.ArrowInvalid, OSError) as exc:
        raise KitError(f"{file}: not a readable parquet file ({exc}); check it is complete") from None


def _read_arrow(file: Path) -> Any:
    """An Arrow IPC stream (what ``datasets`` writes) or IPC file (feather v2)."""
    import pyarrow as pa

    for opener in (pa.ipc.open_stream, pa.ipc.open_file):
        try:
            with pa.memory_map(str(file)) as source:
                return opener(source).read_all()
        except (pa.ArrowInvalid, OSError):
            continue
    raise KitError(
        f"{file}: not an Arrow IPC stream or file; save it with Dataset.save_to_disk or as parquet"
    )


def _table_rows(label: str, table: Any, *, encoding: str | None = None, local: Path | None = None) -> RowFile:
    def rows() -> Iterator[tuple[int, Any]]:
        number = 0
        for batch in table.to_batches(max_chunksize=_BATCH):
            for row in batch.to_pylist():
                number += 1
                yield number, row

    return RowFile(
        label, encoding, rows(), unit="row", columns=list(table.column_names), local=local, table=table
    )


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def _pick_split(dataset: Any, split: str | None, where: str) -> Any:
    """One split of a DatasetDict: ``split``, else ``train``, else the only one."""
    from datasets import DatasetDict, IterableDatasetDict

    if not isinstance(dataset, DatasetDict | IterableDatasetDict):
        return dataset
    names = list(dataset)
    if split is not None:
        if split not in dataset:
            raise KitError(f"{where}: no split {split!r}; its splits are {names} (e.g. {where}:{names[0]})")
        return dataset[split]
    if "train" in dataset:
        return dataset["train"]
    if len(names) == 1:
        return dataset[names[0]]
    raise KitError(f"{where}: several splits {names}; name one, e.g. split={names[0]!r}")


def _saved_dataset_rows(folder: Path, split: str | None) -> RowFile:
    from datasets import load_from_disk

    from kit.runinfo import record_data_file

    try:
        dataset = _pick_split(load_from_disk(str(folder)), split, str(folder))
    except (FileNotFoundError, ValueError) as exc:
        raise KitError(f"{folder}: not a readable save_to_disk folder ({exc})") from None
    for arrow in sorted(folder.rglob("*.arrow")):
        record_data_file(arrow)
    return _table_rows(str(folder), _arrow_table(dataset), local=folder)


def offline_flags() -> list[str]:
    """The offline switches set in the environment (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE)."""
    truthy = {"1", "true", "yes", "on"}
    return [n for n in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if os.environ.get(n, "").lower() in truthy]


def hub_error(name: str, config: str | None, split: str | None, reason: str) -> KitError:
    """The one message for a hub id that cannot be read (offline, no network, or no such dataset)."""
    spec = ":".join(x for x in (name, config or ("" if split else None), split) if x is not None)
    flags = offline_flags()
    state = (
        f"offline mode is on ({', '.join(f'{f}=1' for f in flags)}; HF_HUB_OFFLINE/HF_DATASETS_OFFLINE keep "
        "datasets off the hub)"
        if flags
        else "the hub could not be reached or has no such dataset (offline? set HF_HUB_OFFLINE=1 or "
        "HF_DATASETS_OFFLINE=1 to fail fast)"
    )
    return KitError(
        f"{spec}: not a local file or folder, and reading it as a hub dataset id failed: {state} [{reason}]. "
        f"Use a local copy: where there is network run `datasets.load_dataset({name!r}"
        + (f", {config!r}" if config else "")
        + f").save_to_disk('data/hub/{name.split('/')[-1]}')` (or download its parquet/JSON files), copy it here "
        f"and set data_path to that folder or file"
    )


def _hub_rows(name: str, config: str | None, split: str | None, text: str) -> RowFile:
    try:
        from datasets import load_dataset
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise hub_error(name, config, split, "the datasets package is not installed") from None
    if offline_flags():
        # datasets reads the offline flags at import time; honour them even if they were set later.
        import datasets.config as dconfig

        dconfig.HF_HUB_OFFLINE = dconfig.HF_DATASETS_OFFLINE = True
    try:
        dataset = load_dataset(name, config, split=split)
    except Exception as exc:  # every hub failure becomes the one message
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise hub_error(name, config, split, f"{type(exc).__name__}: {first}") from None
    where = ":".join(x for x in (name, config, split) if x)
    dataset = _pick_split(dataset, split, where)
    return _table_rows(f"hub:{where}", _arrow_table(dataset))


def _arrow_table(dataset: Any) -> Any:
    """The Arrow table of a ``datasets.Dataset`` as its rows are seen (an indices mapping applied)."""
    if getattr(dataset, "_indices", None) is not None:
        dataset = dataset.flatten_indices()
    return dataset.data.table


@dataclass
class Resolved:
    """A data_path after a registry entry (if any) was looked up: where to read and how to map it."""

    path: str
    columns: dict[str, str]
    config: str | None = None
    split: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def resolve(
    data_path: str | os.PathLike[str],
    kind: str,
    columns: Mapping[str, str] | str | None = None,
    config: str | None = None,
    split: str | None = None,
) -> Resolved:
    """Look up ``registry:FILE:NAME`` (its columns/tags; the caller's ``columns`` win); other paths pass through."""
    text = os.fspath(data_path)
    given = parse_columns(columns)
    if not text.startswith(REGISTRY_PREFIX):
        return Resolved(text, given, config, split)
    from kit.data.registry import parse_registry_path, read_entry

    file, name = parse_registry_path(text)
    entry = read_entry(file, name)
    if entry.kind != kind:
        raise KitError(
            f"{text}: entry {name!r} is {entry.describe()}, which the {entry.kind} loader reads, not the {kind} "
            f"loader; use kit.data.load_data({text!r}) or --kind {entry.kind}"
        )
    return Resolved(
        entry.path, {**entry.columns, **given}, config or entry.config, split or entry.split, dict(entry.tags)
    )


def open_tables(
    data_path: str | os.PathLike[str], kind: str, *, config: str | None = None, split: str | None = None
) -> tuple[str, list[tuple[str, Any]]]:
    """(source label, [(file label, Arrow table)]) for loaders that work on whole columns (medical).

    JSON/JSONL files become tables of their rows; every row must then be an object.
    """
    import pyarrow as pa

    from kit.data.files import INVALID_JSON

    label, files = open_rows(data_path, kind, config=config, split=split)
    tables = []
    for source in files:
        if source.table is None:
            rows = []
            for number, row in source.rows:
                if row is INVALID_JSON or not isinstance(row, dict):
                    raise KitError(
                        f"{source.path}: {source.unit} {number} is not a JSON object; the {kind} loader needs every "
                        "row of a JSON file to be one (fix it, or save the data as CSV or parquet)"
                    )
                rows.append(row)
            source.table = pa.Table.from_pylist(rows)
        tables.append((source.path, source.table))
    return label, tables


# --- The read-validate-report step ----------------------------------------------------------------------------


def load_records(
    data_path: str | os.PathLike[str],
    spec: Spec,
    convert: Converter,
    *,
    key: Callable[[dict[str, Any]], Hashable] | None,
    columns: Mapping[str, str] | None = None,
    config: str | None = None,
    split: str | None = None,
) -> tuple[str, list[dict[str, Any]], list[FileReport], list[str]]:
    """Read every row of ``data_path``, map columns, convert, drop duplicates, count each outcome.

    Returns (source label, kept records, per-file reports, column names found). ``key`` identifies
    duplicates across all files (first kept); None keeps duplicates.
    """
    mapping = check_columns(columns, spec)
    label, files = open_rows(data_path, spec.kind, config=config, split=split)
    seen: set[Hashable] = set()
    found: dict[str, None] = {}
    records: list[dict[str, Any]] = []
    reports: list[FileReport] = []
    from kit.data.files import INVALID_JSON

    for source in files:
        report = FileReport(path=source.path, encoding=source.encoding)
        if source.delimiter not in (None, ","):
            from kit.data.csvrows import DELIMITER_NAMES

            report.notes["delimiter"] = f"{DELIMITER_NAMES[source.delimiter]} ({source.delimiter!r})"
        found.update(dict.fromkeys(source.columns))
        previous = None
        for number, row in source.rows:
            report.rows_read += 1
            where = f"{source.unit} {number}"
            if isinstance(row, tuple) and len(row) == 2 and row[0] is _BAD_ROW:
                report.skip("bad_row", where="a row with the wrong number of fields", preview=row[1])
                report.notes.setdefault("first_bad_row", row[1][:120])
                continue
            if row is INVALID_JSON:
                report.skip("invalid_json", where=where)
                report.notes.setdefault("first_invalid_json_line", number)
                continue
            if not isinstance(row, dict):
                report.skip("not_an_object", where=where, preview=row)
                report.notes.setdefault("first_non_object_row", number)
                continue
            if len(found) < 200:
                found.update(dict.fromkeys(row))
            if number == previous and source.unit == "line":
                report.fix("several_objects_on_one_line")
                report.notes.setdefault("first_line_with_several_objects", number)
            previous = number
            row, had_missing = clear_missing(row)
            record, reason, fixes = convert(remap(row, mapping))
            if record is None:
                if had_missing and reason in _EMPTY_REASONS:
                    reason = "missing_value"
                report.skip(reason or "invalid", where=where, preview=row)
                continue
            if had_missing:
                report.fix("missing_value_as_empty")
            if key is not None:
                identity = key(record)
                if identity in seen:
                    report.skip("duplicate", where=where, preview=row)
                    continue
                seen.add(identity)
            for what in fixes:
                report.fix(what)
            records.append(record)
            report.rows_kept += 1
        report.check()
        reports.append(report)
    if files and files[0].ignored and reports:
        reports[0].notes["files_not_read"] = list(files[0].ignored)
    return label, records, reports, list(found)


def build_report(
    label: str,
    spec: Spec,
    records: list[dict[str, Any]],
    reports: list[FileReport],
    found: list[str],
    columns: Mapping[str, str] | None,
    *,
    features: Any = None,
    **fields: Any,
) -> tuple[Any, LoadReport]:
    """The Dataset and LoadReport of a load; a load that keeps no row raises :func:`zero_rows_error`."""
    from datasets import Dataset

    if not records:
        raise zero_rows_error(label, spec, reports, found, columns)
    dataset = Dataset.from_list(records, features=features)
    report = LoadReport(kind=spec.kind, source=label, files=reports, dataset=dataset, **fields)
    report.unread_columns = unread_columns(spec, found, columns)
    report.ignored_files = list(reports[0].notes.get("files_not_read", [])) if reports else []
    return dataset, report


def suggest_mapping(spec: Spec, found: list[str], columns: Mapping[str, str] | None = None) -> dict[str, str]:
    """A mapping that would give the loader its required fields from the columns ``found`` (may be partial)."""
    lowered = {c.strip().lower(): c for c in found}
    mapping = dict(parse_columns(columns))
    taken = set(mapping.values())
    for group in spec.required:
        satisfied = any(mapping.get(name) in found for name in group) or any(
            name not in mapping and any(alias in lowered for alias in spec.names_for(name)) for name in group
        )
        if satisfied:
            continue
        for name in group:
            candidate = next(
                (lowered[c] for c in ALIASES.get(name, ()) if c in lowered and lowered[c] not in taken),
                None,
            )
            if candidate is not None:
                mapping[name] = candidate
                taken.add(candidate)
                break
    if mapping != dict(parse_columns(columns)):
        # Optional fields too (a Dolly file's context is the input): a suggested fix never drops a column.
        for name in spec.optional:
            if name in mapping or any(alias in lowered for alias in spec.names_for(name)):
                continue
            candidate = next((lowered[c] for c in ALIASES.get(name, ()) if c in lowered and lowered[c] not in taken), None)
            if candidate is not None:
                mapping[name] = candidate
                taken.add(candidate)
    return mapping


def unread_columns(spec: Spec, found: list[str], columns: Mapping[str, str] | None) -> list[str]:
    """The columns ``found`` that the loader does not read (neither a field of its own nor a mapped column)."""
    mapping = parse_columns(columns)
    read = {n.lower() for name in spec.accepted for n in spec.names_for(name) if name not in mapping}
    read |= {v.lower() for v in mapping.values()}
    return [c for c in found if str(c).strip().lower() not in read]


def zero_rows_error(
    label: str, spec: Spec, reports: list[FileReport], found: list[str], columns: Mapping[str, str] | None
) -> KitError:
    """The error for a load that keeps nothing: what was found, what is wanted, and the mapping that fixes it."""
    read = sum(r.rows_read for r in reports)
    skipped: dict[str, int] = {}
    for report in reports:
        for reason, count in report.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    wanted = " and ".join("/".join(group) for group in spec.required)
    what = (
        f"kept 0 of {read} rows (skipped: {', '.join(f'{k}={v}' for k, v in sorted(skipped.items()))})"
        if read
        else "no rows (the file is empty or holds only a header)"
    )
    mapping = suggest_mapping(spec, found, columns)
    given = parse_columns(columns)
    if mapping and mapping != given:
        cli = ",".join(f"{k}={v}" for k, v in mapping.items())
        fix = f"Fix: load it with columns={mapping} (CLI: --columns {cli})"
    elif read and not set(skipped) & {"missing_field"}:
        fix = "The columns are there but every row broke a rule: see them with `kit data report ... --show-skipped 5`"
    elif read:
        fix = "Fix: pass columns={FIELD: YOUR_COLUMN} naming your columns, e.g. columns=" + repr(
            {group[0]: "..." for group in spec.required}
        )
    else:
        fix = "Fix: point data_path at a file with rows"
    return KitError(
        f"{label}: the {spec.kind} loader {what}. It wants {wanted}"
        + (f" (optional: {', '.join(spec.optional)})" if spec.optional else "")
        + f"; columns found: {found}"
        + (f"; mapping given: {given}" if given else "")
        + f". {fix}"
    )
