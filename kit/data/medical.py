"""Chinese medical Q&A CSVs (department folders such as ``IM_内科``) as instruction records.

Reading: every file is checked for a git-LFS pointer, then decoded strictly as a WHOLE, once, with the
first codec that works and gives plausible text (UTF-8 → GBK → GB18030 → Big5, see :mod:`kit.data.files`),
which is recorded. The text goes to pyarrow's CSV reader as UTF-8 (:mod:`kit.data.csvrows`): a real CSV
parser (quoted commas, embedded newlines and a stray ``"`` inside a field come out right), multi-threaded,
every column read as text, fields of any size.

Cleaning is vectorised over whole columns (Arrow compute kernels and numpy masks; no per-row Python):
CRLF → LF, runs of spaces/tabs/U+3000 collapse to one space, spaces around newlines go, edges are
stripped; newlines inside answers stay. Skipped and counted, in this order: "unclosed_quote" (a row whose
quote never closes: its first line, named in the notes; the rows after it are read), "bad_row" (wrong
number of fields), "empty_question", "placeholder_question" (see :data:`kit.data.text.PLACEHOLDERS`),
"empty_answer", "duplicate" (same question and answer after normalisation, across all files, first kept;
only when ``dedupe``). Rows are filtered once per file, after the duplicate test, so memory holds the
data about once (plus the files in flight) rather than a copy per step.

Speed and memory (``benchmarks/loaders.py``, 500k GBK rows, 133 MB, 2 cores): ~1.8 s, 22x the rows/s of
a row-by-row ``iterrows`` loader with the same rules and the same kept records, peak RSS ~3.5x the input
(the imported libraries included). Two files are cleaned at a time in threads; Arrow allocates from the
system allocator during the load and freed memory is handed back between files.

Output columns: instruction (:data:`kit.formatting.prompts.MEDICAL_INSTRUCTION`), input (the question), output (the
answer), department (from the folder), sub_department (the CSV's own ``department`` column), title.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.data.arrowtext import normalise_array, placeholder_mask
from kit.data.csvrows import DELIMITER_NAMES, read_csv_table, read_header
from kit.data.dedupe import duplicated_pairs, pair_keys
from kit.data.files import decode_to_utf8, files_fingerprint, find_files
from kit.data.report import SAMPLES_PER_REASON, FileReport, LoadReport
from kit.data.sources import Spec
from kit.data.text import MISSING_TEXTS
from kit.errors import KitError
from kit.formatting.prompts import MEDICAL_INSTRUCTION
from kit.runinfo import record_data_file

# Accepted header names (compared stripped and lower-cased), first match wins.
QUESTION_ALIASES = ("question", "问题", "ask", "提问", "query")
ANSWER_ALIASES = ("answer", "回答", "response", "答案", "回复")
TITLE_ALIASES = ("title", "标题")
SUB_DEPARTMENT_ALIASES = ("department", "科室", "sub_department")
COLUMNS = ["instruction", "input", "output", "department", "sub_department", "title"]
SPEC = Spec(
    "medical",
    required=(("question",), ("answer",)),
    optional=("title", "department"),
    native={
        "question": QUESTION_ALIASES,
        "answer": ANSWER_ALIASES,
        "title": TITLE_ALIASES,
        "department": SUB_DEPARTMENT_ALIASES,
    },
)
# Titles that say nothing, so a placeholder question cannot be replaced by them.
TITLE_PLACEHOLDERS = ("无题", "无标题", "未命名", "untitled", "no title")
_TEXT_COLUMNS = ("input", "output", "title", "sub_department")
_BLOCK_SIZE = 4 << 20
_WORKERS = 2


def folder_department(folder: str, departments: dict[str, str] | None = None) -> str:
    """``IM_内科`` → ``内科`` (the part after the first ``_``; no ``_`` keeps the name); ``departments`` overrides."""
    if departments and folder in departments:
        return departments[folder]
    return folder.split("_", 1)[1] if "_" in folder else folder


def _department_of(file: Path, root: Path, departments: dict[str, str] | None) -> str:
    if root.is_file():
        folder = file.parent.name
    else:
        parts = file.relative_to(root).parts
        folder = parts[0] if len(parts) > 1 else root.name
    return folder_department(folder, departments)


def _header(path: Path, first_chunk: bytes) -> tuple[list[str], str]:
    """The header row and the delimiter (:func:`kit.data.csvrows.read_header`); an empty file is a KitError."""
    header, delimiter = read_header(path, first_chunk)
    if not header:
        raise KitError(
            f"{path}: the file is empty; expected a CSV with a header row (e.g. department,title,ask,answer)"
        )
    return header, delimiter


def _pick(names: dict[str, str], aliases: tuple[str, ...]) -> str | None:
    for alias in aliases:
        if alias in names:
            return names[alias]
    return None


def choose_columns(
    header: list[str], columns: dict[str, str] | None, where: str, delimiter: str = ","
) -> dict[str, str | None]:
    """Which source column feeds input/output/title/sub_department: the mapping first, then the aliases.

    ``columns`` uses the loader's field names: question, answer, title, department (the file's own
    department column, kept as sub_department). A missing question/answer column is a :class:`KitError`
    naming the columns found and the mapping that would fix it.
    """
    from kit.data.sources import check_columns, suggest_mapping

    mapping = check_columns(columns, SPEC)
    names: dict[str, str] = {}
    for name in header:
        names.setdefault(name.strip().lower(), name)
    for field, source in mapping.items():
        if source not in header:
            raise KitError(
                f"{where}: columns maps {field} to {source!r}, which is not a column; columns found: {header}"
            )
    question = mapping.get("question") or _pick(names, QUESTION_ALIASES)
    answer = mapping.get("answer") or _pick(names, ANSWER_ALIASES)
    if question is None or answer is None:
        if len(header) == 1 and any(d in header[0] for d in ";\t|"):
            raise KitError(
                f"{where}: the header is one column, {header[0][:80]!r}; the file seems separated by something "
                "other than the delimiter it was read with. Re-save it as comma-separated CSV (or as .tsv if tabs)"
            )
        hint = suggest_mapping(SPEC, header, mapping)
        fix = (
            f" or load it with columns={hint}"
            if hint and hint != mapping
            else " or pass columns={'question': ..., 'answer': ...}"
        )
        raise KitError(
            f"{where}: no {'question' if question is None else 'answer'} column; columns found: {header}. "
            f"Accepted names: question {list(QUESTION_ALIASES)}, answer {list(ANSWER_ALIASES)} (case-insensitive); "
            f"rename the header{fix}"
        )
    title = mapping.get("title") or _pick(names, TITLE_ALIASES)
    sub = mapping.get("department") or _pick(names, SUB_DEPARTMENT_ALIASES)
    return {"input": question, "output": answer, "title": title, "sub_department": sub}


def _read_csv(path: Path, report: FileReport, columns: dict[str, str] | None = None) -> Any:
    """Decode and parse one CSV into an Arrow table with input/output/title/sub_department string columns."""
    import pyarrow as pa

    report.encoding, chunks = decode_to_utf8(path)
    header, delimiter = _header(path, chunks[0] if chunks else b"")
    if delimiter != ",":
        report.notes["delimiter"] = f"{DELIMITER_NAMES[delimiter]} ({delimiter!r})"
    wanted = choose_columns(header, columns, str(path), delimiter)
    report.columns = list(header)

    include = list(dict.fromkeys(c for c in wanted.values() if c is not None))
    parsed = read_csv_table(path, chunks, header, include, lambda: decode_to_utf8(path)[1], delimiter)
    table, bad, broken = parsed.table, parsed.bad_rows, parsed.unclosed_quote_lines
    report.rows_read = table.num_rows + len(bad) + len(broken)
    report.skip("bad_row", len(bad))
    if bad:
        report.notes["first_bad_row"] = bad[0][:120]
    report.skip("unclosed_quote", len(broken))
    if broken:
        report.notes["first_unclosed_quote_line"] = broken[0]
        report.notes["unclosed_quote"] = (
            f"line {broken[0]}: a quote opens in this row and never closes properly; the row was skipped and the "
            f"rows after it were read normally ({len(broken)} such row{'s' if len(broken) != 1 else ''}); fix the quote"
        )
    empty = pa.repeat(pa.scalar("", pa.string()), table.num_rows)
    return pa.table({out: table.column(src) if src is not None else empty for out, src in wanted.items()})


@dataclass
class _Part:
    """One file after cleaning, before filtering: its columns, the rows the rules keep, its department."""

    index: int
    table: Any
    keep: Any
    department: str
    key: Any = None


def _clean(
    index: int, path: Path, report: FileReport, department: str, columns: dict[str, str] | None
) -> _Part:
    return _apply_rules(index, _read_csv(path, report, columns), report, department)


def _sample(report: FileReport, reason: str, mask: Any, table: Any, limit: int = SAMPLES_PER_REASON) -> None:
    """Keep the first rows of ``mask`` as skipped-row samples (data row number, question | answer)."""
    import numpy as np

    for i in np.flatnonzero(mask)[:limit]:
        question = table.column("input")[int(i)].as_py()
        answer = table.column("output")[int(i)].as_py()
        report.sample(reason, f"data row {int(i) + 1}", f"{question} | {answer}")


def _apply_rules(index: int, table: Any, report: FileReport, department: str) -> _Part:
    """The row rules, vectorised: normalise, title for a placeholder question, then empty/placeholder tests."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.table({name: normalise_array(table.column(name)) for name in _TEXT_COLUMNS})
    # Missing cells as pandas writes them ("nan", "inf", "<NA>"...) are empty, never text (kit.data.text).
    missing_set = pa.array(sorted(MISSING_TEXTS), pa.string())
    missing_rows = np.zeros(table.num_rows, dtype=bool)
    missing_cells: dict[str, Any] = {}
    for position, name in enumerate(_TEXT_COLUMNS):
        mask = pc.is_in(table.column(name), value_set=missing_set)
        if pc.any(mask).as_py():
            table = table.set_column(position, name, pc.if_else(mask, pa.scalar("", pa.string()), table.column(name)))
            missing_cells[name] = mask.to_numpy(zero_copy_only=False)
            missing_rows |= missing_cells[name]
    question, title = table.column("input"), table.column("title")
    empty_q = pc.equal(pc.utf8_length(question), 0).to_numpy(zero_copy_only=False)
    placeholder = ~empty_q & placeholder_mask(question)
    # A placeholder (or empty) question whose title is a real question: the title becomes the question.
    real_title = (
        pc.greater_equal(pc.utf8_length(title), 2).to_numpy(zero_copy_only=False)
        & ~placeholder_mask(title)
        & ~pc.is_in(pc.utf8_lower(title), value_set=pa.array(TITLE_PLACEHOLDERS)).to_numpy(
            zero_copy_only=False
        )
    )
    use_title = (empty_q | placeholder) & real_title
    if use_title.any():
        table = table.set_column(0, "input", pc.if_else(pa.array(use_title), title, question))
        report.fix("title_as_question", int(use_title.sum()))
        empty_q, placeholder = empty_q & ~use_title, placeholder & ~use_title
    empty_a = (
        ~empty_q
        & ~placeholder
        & pc.equal(pc.utf8_length(table.column("output")), 0).to_numpy(zero_copy_only=False)
    )
    skipped_missing = (empty_q | empty_a) & (missing_cells.get("input", False) | missing_cells.get("output", False))
    for reason, mask in (
        ("missing_value", skipped_missing),
        ("empty_question", empty_q & ~skipped_missing),
        ("placeholder_question", placeholder),
        ("empty_answer", empty_a & ~skipped_missing),
    ):
        report.skip(reason, int(mask.sum()))
        _sample(report, reason, mask, table)
    keep = ~(empty_q | placeholder | empty_a)
    report.fix("missing_value_as_empty", int((missing_rows & keep).sum()))
    return _Part(index, table, keep, department, pair_keys(table))


def _table_part(
    index: int, label: str, table: Any, report: FileReport, department: str, columns: dict[str, str] | None
) -> _Part:
    """A parquet/Arrow/save_to_disk/hub table through the same rules as a CSV (columns read as text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = choose_columns(list(table.column_names), columns, label)
    report.columns = list(table.column_names)
    report.rows_read = table.num_rows
    empty = pa.repeat(pa.scalar("", pa.string()), table.num_rows)

    def text(name: str | None) -> Any:
        if name is None:
            return empty
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            try:
                column = pc.cast(column, pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise KitError(
                    f"{label}: column {name!r} holds {column.type}, not text; map another column"
                ) from None
        return pc.fill_null(pc.cast(column, pa.string()), "")

    parts = pa.table({out: text(src) for out, src in wanted.items()})
    return _apply_rules(index, parts, report, department)


def load_medical(
    path: str | os.PathLike[str],
    departments: dict[str, str] | None = None,
    dedupe: bool = True,
    columns: Mapping[str, str] | str | None = None,
    *,
    config: str | None = None,
    split: str | None = None,
) -> tuple[Any, LoadReport]:
    """Load one CSV or a tree of department folders; returns (Dataset, LoadReport). See the module doc.

    Also reads parquet/Arrow/JSON files, a save_to_disk folder or a hub id (``config``/``split``) through
    the same rules; their department is the file's or dataset's name. ``columns`` maps question, answer,
    title and department (the file's own department column) to other column names. A load that keeps no
    row is a :class:`KitError` naming the columns found and the mapping that would fix it.
    """
    from kit.data.sources import parse_columns

    mapping = parse_columns(columns)
    with _system_allocator():
        return _load_medical(path, departments, dedupe, mapping, config, split)


_CSV = (".csv", ".tsv")
_OTHER_ROWS = (".parquet", ".arrow", ".json", ".jsonl")


def _csv_files(path: str | os.PathLike[str]) -> tuple[Path, list[Path], list[str]] | None:
    """(root, data files, files not read) when ``path`` is a CSV/TSV file or a folder holding CSVs; None for
    other sources. A department folder's JSON/JSONL/parquet/Arrow files are read too (through the table rules)."""
    from kit.data.files import not_read
    from kit.data.sources import METADATA_NAMES
    from kit.paths import resolve_path

    root = resolve_path(path)
    if not root.exists():
        return None
    if root.is_file():
        return (root, [root], []) if root.suffix.lower() in _CSV else None
    if (root / "state.json").is_file() or (root / "dataset_dict.json").is_file():
        return None
    if any(p.suffix.lower() in _CSV for p in root.rglob("*")) or not any(
        p.suffix.lower() in _OTHER_ROWS for p in root.rglob("*")
    ):
        suffixes = (*_CSV, *_OTHER_ROWS)
        root, files = find_files(path, suffixes, "medical")
        files = [f for f in files if f.name not in METADATA_NAMES]
        return root, files, not_read(root, suffixes, METADATA_NAMES)
    return None


def _table_department(label: str) -> str:
    """The department of a non-CSV source: its file or folder name (``IM_内科`` → 内科), or the hub dataset's name."""
    if label.startswith("hub:"):
        return label[4:].split(":")[0].split("/")[-1]
    return folder_department(Path(label).stem)


def _load_medical(
    path: str | os.PathLike[str],
    departments: dict[str, str] | None,
    dedupe: bool,
    columns: dict[str, str],
    config: str | None,
    split: str | None,
) -> tuple[Any, LoadReport]:
    import numpy as np
    import pyarrow as pa

    from kit.data.sources import open_tables, zero_rows_error

    found = _csv_files(path)
    ignored: list[str] = []
    if found is not None:
        root, files, ignored = found
        source = str(root)
        reports = [FileReport(path=str(file)) for file in files]
        for file in files:
            record_data_file(file)
        fingerprint = files_fingerprint(files, "medical", departments, dedupe, columns)

        def make(index: int) -> _Part:
            department = _department_of(files[index], root, departments)
            if files[index].suffix.lower() not in _CSV:
                label, [(_, table)] = open_tables(str(files[index]), "medical")
                reports[index].encoding = "utf-8"
                return _table_part(index, label, table, reports[index], department, columns)
            return _clean(index, files[index], reports[index], department, columns)
    else:
        source, tables = open_tables(path, "medical", config=config, split=split)
        reports = [FileReport(path=label) for label, _ in tables]
        fingerprint = files_fingerprint(
            [], "medical", source, [t.num_rows for _, t in tables], dedupe, columns
        )

        def make(index: int) -> _Part:
            label, table = tables[index]
            return _table_part(index, label, table, reports[index], _table_department(label), columns)

    _last_trim[0] = _rss_bytes()

    def clean(index: int) -> _Part:
        part = make(index)
        _release_unused_memory()
        return part

    # Files are cleaned two at a time: parsing and the Arrow/numpy kernels release the GIL, so decoding one
    # file overlaps with the column work on the other. map() keeps the files' order.
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        parts = list(pool.map(clean, range(len(reports))))
        _release_unused_memory(force=True)
        if dedupe and parts:
            duplicate = duplicated_pairs(
                pa.chunked_array([c for p in parts for c in p.table.column("input").chunks], pa.string()),
                pa.chunked_array([c for p in parts for c in p.table.column("output").chunks], pa.string()),
                np.concatenate([p.keep for p in parts]),
                keys=np.concatenate([p.key for p in parts]),
            )
            offsets = np.cumsum([0] + [p.table.num_rows for p in parts])
            for part, start, stop in zip(parts, offsets[:-1], offsets[1:], strict=True):
                dup = duplicate[start:stop]
                reports[part.index].skip("duplicate", int(dup.sum()))
                _sample(reports[part.index], "duplicate", dup, part.table)
                part.keep &= ~dup
        # Each file is filtered once, after the duplicate test, and its unfiltered columns are dropped at
        # once, so the data is held about once (plus the files in flight), not once per step.
        tables_out = list(pool.map(lambda part: _finish(part, reports[part.index]), parts))
        del parts
    if not sum(r.rows_kept for r in reports):
        header = list(dict.fromkeys(c for r in reports for c in r.columns))
        raise zero_rows_error(source, SPEC, reports, header, columns)
    table = pa.concat_tables(tables_out)
    del tables_out
    dataset = _dataset(table, fingerprint)
    del table
    _release_unused_memory(force=True)
    report = LoadReport(
        kind="medical",
        source=source,
        files=reports,
        text_fields=("input", "output"),
        category_fields=("department", "sub_department"),
        opening_field="input",
        dataset=dataset,
        ignored_files=ignored,
    )
    return dataset, report


def _finish(part: _Part, report: FileReport) -> Any:
    """The kept rows of one file in the output columns; the part's own table is released."""
    import pyarrow as pa

    table, part.table = part.table, None
    kept = table if part.keep.all() else table.filter(pa.array(part.keep))
    del table
    report.rows_kept = n = kept.num_rows
    out = pa.table(
        {
            "instruction": pa.repeat(pa.scalar(MEDICAL_INSTRUCTION, pa.string()), n),
            "input": kept.column("input"),
            "output": kept.column("output"),
            "department": pa.repeat(pa.scalar(part.department, pa.string()), n),
            "sub_department": kept.column("sub_department"),
            "title": kept.column("title"),
        }
    )
    del kept
    _release_unused_memory()
    return out


def _rss_bytes() -> int:
    """This process's resident set size (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_TRIM_EVERY = 48 << 20
_last_trim = [0]


def _release_unused_memory(force: bool = False) -> None:
    """Hand freed memory back to the OS once enough has piled up (or when ``force``).

    Trimming after every file keeps the peak lowest but makes the next file fault its pages in again
    (system time); trimming once RSS has grown by 48 MB since the last trim keeps nearly the same peak.
    """
    import pyarrow as pa

    rss = _rss_bytes()
    if force or not rss or rss - _last_trim[0] > _TRIM_EVERY:
        pa.default_memory_pool().release_unused()
        _last_trim[0] = _rss_bytes()


@contextmanager
def _system_allocator() -> Iterator[None]:
    """Allocate Arrow memory with the system allocator while loading (the previous pool is restored after).

    Arrow's default mimalloc pool keeps freed pages in per-thread heaps; a load that frees a file's
    intermediate columns before reading the next one then peaks ~15% of the data higher. Buffers keep
    the pool they came from, so the returned dataset is unaffected.
    """
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _dataset(table: Any, fingerprint: str) -> Any:
    """A ``datasets.Dataset`` over the Arrow table, with a cheap fingerprint (no hashing of the whole table)."""
    from datasets import Dataset

    return Dataset(table, fingerprint=fingerprint)
