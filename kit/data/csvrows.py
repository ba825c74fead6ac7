"""Parse decoded CSV text (UTF-8 chunks) into an Arrow table of text columns, without losing or hiding rows.

pyarrow's reader is fast but has three traps this module closes:

- **Unclosed quotes.** A quote that never closes swallows the rows after it into one field (or, at the end of
  the file, into a row that looks fine). A vectorised scan (:func:`suspicious_quotes`) finds files where
  some ``"`` is not where well-formed quoting puts it; in those, Python's strict csv reader finds the rows
  whose quoting is broken; each such row's first line is dropped and counted (``unclosed_quote``, with the
  line the quote opened in), and the rows after it are read normally.
- **Huge fields.** A field larger than the parser's block is refused ("straddling object"); the block size
  grows until the field fits (as long as the file fits in memory).
- **A hang at exit.** With several threads and a Python ``invalid_row_handler``, a failed read leaves Arrow
  tasks that call back into Python while the interpreter shuts down, and the process never exits. So the
  fast read runs without a handler; only a file that has bad rows is read again, single-threaded, with it.
"""

from __future__ import annotations

import csv
import io
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError

BLOCK_SIZE = 4 << 20
_MAX_BLOCK = (1 << 31) - 1  # Arrow's block size is a 32-bit int
_MAX_BROKEN = 1000  # more rows with broken quotes than this: not a CSV worth guessing about


@dataclass
class CsvTable:
    """A parsed CSV: the table, the raw text of rows with the wrong number of fields, and the first lines of
    rows whose quoting was broken (1-based line numbers, the header being line 1)."""

    table: Any
    bad_rows: list[str] = field(default_factory=list)
    unclosed_quote_lines: list[int] = field(default_factory=list)


_OTHER_DELIMITERS = (";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}


def read_header(path: Path, first_chunk: bytes) -> tuple[list[str], str]:
    """(header row, delimiter) of a CSV from its first UTF-8 chunk; ``[]`` for an empty file.

    A ``.tsv`` file is tab-separated; a ``.csv`` whose header holds one field with ``;``, tabs or ``|`` in it is
    read with that delimiter (the load report names it). A header naming the same column twice is a
    :class:`KitError` (one of them would be dropped without a word).
    """
    text = first_chunk[: 1 << 16].decode("utf-8", errors="ignore")  # may cut a character at the end only
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    if delimiter == "," and len(header) == 1:
        for other in _OTHER_DELIMITERS:
            split = next(csv.reader(io.StringIO(text, newline=""), delimiter=other), [])
            if len(split) >= 2:
                header, delimiter = split, other
                break
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        key = name.strip()
        if key and key in seen:
            raise KitError(
                f"{path}: the header names column {key!r} twice (columns {seen[key]} and {number}); rename one "
                "so that neither is dropped"
            )
        seen.setdefault(key, number)
    return header, delimiter


def suspicious_quotes(chunks: list[bytes], delimiter: str = ",") -> bool:
    """True unless every ``"`` in the UTF-8 chunks sits where well-formed CSV quoting puts it (vectorised).

    Read as if every quote toggled "inside a quoted field", the even-numbered quotes open a field (after a
    comma, a line break or another quote) and the odd-numbered ones close it (before a comma, a line break,
    another quote or the end). An odd count or a quote anywhere else, such as an unclosed quote pairing up
    with the next field's opening quote, is suspicious; so is a harmless stray quote inside an unquoted
    field, which the exact check (:func:`broken_quote_lines`) then lets through. numpy releases the GIL.
    """
    import numpy as np

    allowed = np.zeros(256, dtype=bool)
    allowed[[ord(delimiter), ord("\n"), ord("\r"), ord('"')]] = True
    seen = 0
    last = ord("\n")  # the start of the file counts as a line break
    for i, chunk in enumerate(chunks):
        data = np.frombuffer(chunk, np.uint8)
        where = np.flatnonzero(data == 34)
        if len(where):
            opening, closing = where[seen % 2 :: 2], where[1 - seen % 2 :: 2]
            if len(opening) and opening[0] == 0:  # the byte before it ends the previous chunk
                if not allowed[last]:
                    return True
                opening = opening[1:]
            if len(closing) and closing[-1] == len(data) - 1:  # the byte after it starts the next chunk
                if not allowed[next((c[0] for c in chunks[i + 1 :] if c), ord("\n"))]:
                    return True
                closing = closing[:-1]
            if not (allowed[data[opening - 1]].all() and allowed[data[closing + 1]].all()):
                return True
            seen += len(where)
        if len(data):
            last = int(data[-1])
    return seen % 2 == 1


def broken_quote_lines(text: str, delimiter: str = ",") -> list[int]:
    """1-based first lines of the rows whose quoting Python's strict csv reader rejects.

    After a broken row, reading goes on from the line after that row's first line, so each broken quote costs
    one line and the rows it would have swallowed are found again.
    """
    csv.field_size_limit(min(sys.maxsize, (1 << 63) - 1))
    lines = io.StringIO(text, newline="").readlines()
    broken: list[int] = []
    start = 0
    while start < len(lines):
        reader = csv.reader(itertools.islice(lines, start, None), strict=True, delimiter=delimiter)
        row_start = start
        try:
            for _ in reader:
                row_start = start + reader.line_num
            return broken
        except csv.Error:
            broken.append(row_start + 1)
            if len(broken) > _MAX_BROKEN:
                break
            start = row_start + 1
    return broken


def _without_lines(text: str, numbers: list[int]) -> bytes:
    lines = io.StringIO(text, newline="").readlines()
    drop = set(numbers)
    return "".join(line for number, line in enumerate(lines, start=1) if number not in drop).encode("utf-8")


def read_csv_table(
    path: Path,
    chunks: list[bytes],
    header: list[str],
    include: list[str] | None,
    reopen: Callable[[], list[bytes]],
    delimiter: str = ",",
) -> CsvTable:
    """Parse ``chunks`` (the file as UTF-8, consumed) with every column as text; see the module doc.

    ``include`` limits the columns read (None: all). ``reopen`` returns the file's UTF-8 chunks again, for
    the rare second read (a bad row or a huge field), so the first read can drop chunks as it goes.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from kit.data.files import ChunkReader

    result = CsvTable(table=None)
    total = sum(len(c) for c in chunks)
    fixed: bytes | None = None
    if suspicious_quotes(chunks, delimiter):
        text = b"".join(chunks).decode("utf-8")
        broken = broken_quote_lines(text, delimiter)
        if broken and broken[0] == 1:
            raise KitError(f"{path}: line 1 (the header) has a quote that never closes; fix the header row")
        if len(broken) > _MAX_BROKEN:
            raise KitError(
                f"{path}: more than {_MAX_BROKEN} rows have broken quotes (the first at line {broken[0]}); "
                "is this really a CSV? Re-save it from a spreadsheet as CSV"
            )
        if broken:
            result.unclosed_quote_lines = broken
            fixed = _without_lines(text, broken)
            chunks = [fixed]
        del text

    def source() -> list[bytes]:
        return [fixed] if fixed is not None else reopen()

    block = BLOCK_SIZE
    count_bad = False  # the first read has no Python handler (see the module doc: a hang at exit)
    while True:
        bad: list[str] = []

        def on_bad_row(row: Any, bad: list[str] = bad) -> str:
            bad.append(row.text)
            return "skip"

        handler = on_bad_row if count_bad else None
        try:
            table = pacsv.read_csv(
                ChunkReader(chunks, fill=block > BLOCK_SIZE),
                # Big blocks: few chunks per column, so the per-chunk numpy work later stays cheap.
                read_options=pacsv.ReadOptions(block_size=block, use_threads=handler is None),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, newlines_in_values=True, invalid_row_handler=handler
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    include_columns=None if include is None else list(dict.fromkeys(include)),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            message = str(exc).splitlines()[0]
            if "straddl" in message and block < min(_MAX_BLOCK, 2 * total + BLOCK_SIZE):
                block = min(_MAX_BLOCK, max(block * 4, 1 << 20))  # a field bigger than the block: grow it
            elif not count_bad:
                count_bad = True  # a row with the wrong number of fields: read again, counting them
            else:
                raise KitError(
                    f"{path}: the CSV cannot be parsed ({message}); look for an unclosed quote near that spot, "
                    "or re-save the file from a spreadsheet as CSV"
                ) from None
            chunks = source()
            continue
        result.table = table
        result.bad_rows = bad
        return result
