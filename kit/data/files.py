"""Finding and opening data files: folder walks, git-LFS pointers, strict codec detection, JSON/JSONL rows.

Codecs are tried in an order that cannot mis-decode: UTF-8 (BOM or not) first, because GBK would happily
turn many UTF-8 files into mojibake; then GBK, then GB18030 (a superset of GBK, for the 4-byte characters),
then Big5 (Traditional Chinese). Every attempt decodes the WHOLE file strictly: a GBK file whose first
character outside GB2312 sits 100 KB in is still recognised, and nothing is ever decoded with
``errors="replace"``. A legacy codec that decodes without error is accepted only if the text is plausible
(:func:`implausible_share`): Big5 bytes decode "successfully" as GB18030 into private-use and rare
characters, which this check rejects; a file no codec decodes plausibly is a :class:`KitError` naming the
best guess.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.paths import resolve_path

# Tried in this order; the first that decodes the whole file plausibly wins. (gb2312 is never tried: GBK covers it.)
CODECS = ("utf-8", "gbk", "gb18030", "big5")
# A legacy decode is rejected when more than this share of its non-ASCII characters is private-use, a C1
# control or a CJK character outside the common sets (real GBK/Big5 text: under 2%; Big5 read as GB18030: ~60%).
IMPLAUSIBLE_SHARE = 0.10
_MIN_SAMPLE = 20  # fewer non-ASCII characters than this: too little text to judge, accepted
_SAMPLE_WINDOWS = 4
_SAMPLE_CHARS = 8192
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ODD = re.compile(r"[\x80-\x9f\ue000-\uf8ff\U000f0000-\U0010ffff]")  # C1 controls and private use
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
_BOM = codecs.BOM_UTF8
_CHUNK = 1 << 20


def find_files(path: str | os.PathLike[str], suffixes: tuple[str, ...], kind: str) -> tuple[Path, list[Path]]:
    """Resolve ``path`` and list the data files it names: itself, or every ``suffixes`` file below it (sorted).

    A symbolic link that loops or points nowhere, given directly or found with a data suffix in the folder,
    is a :class:`KitError` naming it (never a traceback, never silently left out).
    """
    try:
        root = resolve_path(path)
    except (RuntimeError, OSError) as exc:  # Python 3.11 raises RuntimeError for a symlink loop
        raise KitError(f"{path}: cannot follow this path ({exc}); fix or remove the symbolic link") from None
    if root.is_file():
        return root, [root]
    if not root.exists():
        if os.path.islink(path) or root.is_symlink():
            raise KitError(f"{path}: a symbolic link that loops or points nowhere; fix or remove the link")
        raise KitError(
            f"{path}: no such file or folder (looked in the working directory and the repository root)"
        )
    if not root.is_dir():
        raise KitError(f"{path}: not a regular file or folder; point the {kind} loader at a data file or folder")
    try:
        candidates = [
            p
            for p in root.rglob("*")
            if p.suffix.lower() in suffixes
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        ]
    except OSError as exc:
        raise KitError(f"{root}: cannot list this folder ({exc.strerror or exc}); check its permissions") from None
    for p in candidates:
        if p.is_symlink() and not p.exists():
            raise KitError(f"{p}: a symbolic link that loops or points nowhere; fix or remove the link")
    files = sorted(p for p in candidates if p.is_file())
    if not files:
        raise KitError(
            f"{root}: no {'/'.join(suffixes)} files in this folder; point the {kind} loader at a file or a folder of them"
        )
    return root, files


def not_read(root: Path, suffixes: tuple[str, ...], metadata: frozenset[str] = frozenset()) -> list[str]:
    """The files under folder ``root`` a loader skips (another suffix, or metadata), relative to it, for the
    report: a file next to the data is never left out without a word. Hidden files and folders are not listed."""
    if not root.is_dir():
        return []
    try:
        return sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if not any(part.startswith(".") for part in p.relative_to(root).parts)
            and p.is_file()
            and (p.suffix.lower() not in suffixes or p.name in metadata)
        )
    except OSError:
        return []


def files_fingerprint(files: list[Path], *options: object) -> str:
    """A cheap, deterministic ``datasets`` fingerprint from the files' paths, sizes and mtimes plus loader options.

    Passing it to ``Dataset(...)`` avoids datasets hashing the whole in-memory table (seconds and gigabytes
    for a few hundred thousand rows).
    """
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    digest.update(repr(options).encode())
    return digest.hexdigest()[:32]


def check_not_lfs(path: Path, head: bytes) -> None:
    """Raise :class:`KitError` if ``head`` (the file's first bytes) is a git-LFS pointer, not the data."""
    if head.startswith(LFS_MAGIC):
        raise KitError(
            f"{path}: this is a git-LFS pointer file ({len(head)} bytes starting 'version https://git-lfs...'), "
            "not the data; fetch the real file with `git lfs install && git lfs pull` in the checkout"
        )


def _codec_name(codec: str, raw_head: bytes) -> str:
    return "utf-8-sig" if codec == "utf-8" and raw_head.startswith(_BOM) else codec


def _two_byte_chars(codec: str, leads: range, trails: list[int]) -> set[str]:
    out: set[str] = set()
    for lead in leads:
        for trail in trails:
            try:
                out.add(bytes((lead, trail)).decode(codec))
            except UnicodeDecodeError:
                pass
    return out


@lru_cache(maxsize=1)
def common_hanzi() -> frozenset[str]:
    """GB2312 level-1 hanzi (the 3,755 most used simplified characters) plus Big5's frequently used ones."""
    big5_trails = [*range(0x40, 0x7F), *range(0xA1, 0xFF)]
    return frozenset(
        _two_byte_chars("gb2312", range(0xB0, 0xD8), list(range(0xA1, 0xFF)))
        | _two_byte_chars("big5", range(0xA4, 0xC6), big5_trails)
        | _two_byte_chars("big5", range(0xC6, 0xC7), list(range(0x40, 0x7F)))
    )


def implausible_share(text: str) -> tuple[float, int]:
    """(share of implausible characters among the non-ASCII ones, number of non-ASCII characters) of ``text``.

    Implausible: private-use code points, C1 controls, and CJK ideographs outside :func:`common_hanzi`.
    """
    non_ascii = len(_NON_ASCII.findall(text))
    if not non_ascii:
        return 0.0, 0
    hanzi = _CJK.findall(text)
    rare = len(hanzi) - sum(map(common_hanzi().__contains__, hanzi))
    return (rare + len(_ODD.findall(text))) / non_ascii, non_ascii


def _plausible(sample: str) -> tuple[bool, float]:
    share, count = implausible_share(sample)
    return count < _MIN_SAMPLE or share <= IMPLAUSIBLE_SHARE, share


def _sample_of(text: str) -> str:
    """A few windows spread over ``text`` (the plausibility check never needs the whole file)."""
    if len(text) <= _SAMPLE_WINDOWS * _SAMPLE_CHARS:
        return text
    step = len(text) // _SAMPLE_WINDOWS
    return "".join(text[i * step : i * step + _SAMPLE_CHARS] for i in range(_SAMPLE_WINDOWS))


def _implausible_error(path: Path, guesses: list[tuple[str, float]]) -> KitError:
    codec, _ = min(guesses, key=lambda guess: guess[1])
    tried = ", ".join(f"{c} {s:.0%}" for c, s in guesses)
    return KitError(
        f"{path}: no codec gives plausible text (private-use, control or rare characters among the non-ASCII "
        f"ones: {tried}; utf-8 does not decode); best guess {codec}. Check the file's real encoding and re-save "
        f"it as UTF-8 (e.g. `iconv -f {codec.upper()} -t UTF-8`)"
    )


def _decode_error(path: Path, exc: UnicodeDecodeError, raw: bytes) -> KitError:
    start = exc.start
    bad = raw[start : start + 4]
    return KitError(
        f"{path}: cannot decode as {', '.join(CODECS)} (tried in that order); the last attempt ({exc.encoding}) "
        f"failed at byte offset {start} ({bad!r}). Re-save the file as UTF-8 (e.g. `iconv -f <its codec> -t UTF-8`), "
        "or check that it is a text file and not truncated"
    )


def decode_bytes(path: Path, raw: bytes) -> tuple[str, str]:
    """Decode a whole file strictly with the first codec in :data:`CODECS` that gives plausible text.

    Returns (text, codec). UTF-8 is accepted as soon as it decodes; a legacy codec also has to pass the
    plausibility check. Raises :class:`KitError` naming the file (and the best guess) otherwise.
    """
    check_not_lfs(path, raw[: len(LFS_MAGIC)])
    last: UnicodeDecodeError | None = None
    guesses: list[tuple[str, float]] = []
    for codec in CODECS:
        try:
            text = raw.decode("utf-8-sig" if codec == "utf-8" else codec)
        except UnicodeDecodeError as exc:
            last = exc
            continue
        if codec != "utf-8":
            ok, share = _plausible(_sample_of(text))
            if not ok:
                guesses.append((codec, share))
                continue
        return text, _codec_name(codec, raw)
    if guesses:
        raise _implausible_error(path, guesses)
    assert last is not None
    raise _decode_error(path, last, raw)


def _raise_undecodable(path: Path) -> None:
    """Decode the whole file once more with the last codec, for the exact offset in the message."""
    raw = path.read_bytes()
    try:
        raw.decode(CODECS[-1])
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc, raw) from None
    raise AssertionError("unreachable: streaming and whole-file decoding disagree")  # pragma: no cover


def decode_to_utf8(path: Path) -> tuple[str, list[bytes]]:
    """Strictly decode the WHOLE file with the first codec in :data:`CODECS` that works, in one pass.

    Returns the codec (``utf-8``, ``utf-8-sig`` for UTF-8 with a BOM, ``gbk``, ``gb18030`` or ``big5``) and the
    content as UTF-8 chunks (BOM dropped) for a parser to read through :class:`ChunkReader`. Reading goes
    1 MiB at a time, so a big file never exists as bytes, text and UTF-8 at once; a legacy codec's text is
    checked for plausibility on a few windows spread over the file. Raises :class:`KitError` naming the file
    and the first undecodable byte's offset if no codec decodes it, or the best guess if none is plausible.
    """
    with open(path, "rb") as handle:
        head = handle.read(len(LFS_MAGIC))
    check_not_lfs(path, head)
    n_chunks = max(1, -(-os.path.getsize(path) // _CHUNK))
    every = -(-n_chunks // _SAMPLE_WINDOWS)  # sample at most _SAMPLE_WINDOWS chunks, spread over the file
    guesses: list[tuple[str, float]] = []
    for codec in CODECS:
        decoder = codecs.getincrementaldecoder("utf-8-sig" if codec == "utf-8" else codec)(errors="strict")
        chunks: list[bytes] = []
        sample: list[str] = []
        try:
            with open(path, "rb") as handle:
                for raw in iter(lambda handle=handle: handle.read(_CHUNK), b""):
                    text = decoder.decode(raw)
                    if codec == "utf-8":
                        chunks.append(raw)
                        continue
                    if n_chunks == 1:  # a small file: windows spread over all of it
                        sample.append(_sample_of(text))
                    elif len(chunks) % every == 0:  # two windows of each sampled chunk
                        middle = len(text) // 2
                        sample += (text[: _SAMPLE_CHARS // 8], text[middle : middle + _SAMPLE_CHARS // 8])
                    chunks.append(text.encode("utf-8"))
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        if codec != "utf-8":
            ok, share = _plausible("".join(sample))
            if not ok:
                guesses.append((codec, share))
                continue
        if codec == "utf-8" and head.startswith(_BOM):
            chunks[0] = chunks[0][len(_BOM) :]
        return _codec_name(codec, head), chunks
    if guesses:
        raise _implausible_error(path, guesses)
    _raise_undecodable(path)
    raise AssertionError("unreachable")  # pragma: no cover


class ChunkReader(io.RawIOBase):
    """A read-only file over a list of byte chunks, dropping each chunk once read (memory shrinks as it goes)."""

    def __init__(self, chunks: list[bytes], fill: bool = False) -> None:
        super().__init__()
        self._fill = fill  # fill every read across chunks (else a read returns at most one chunk)
        self._pending = list(reversed(chunks))
        chunks.clear()
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Copy the next bytes into ``buffer``: up to one chunk, or (``fill``) as many as fit.

        pyarrow's CSV reader takes each read as one block, so short reads make ~1 MiB blocks (more
        parallel work per file); a field bigger than that needs ``fill``.
        """
        filled = 0
        size = len(buffer)
        while filled < size and (self._fill or not filled):
            if not self._view:
                if not self._pending:
                    break
                self._view = memoryview(self._pending.pop())
            count = min(size - filled, len(self._view))
            buffer[filled : filled + count] = self._view[:count]
            self._view = self._view[count:]
            filled += count
        return filled


def read_text(path: Path) -> tuple[str, str]:
    """Read and strictly decode a whole (small) text file; returns (text, codec)."""
    raw = path.read_bytes()
    return decode_bytes(path, raw)


INVALID_JSON = object()
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _TooManyDigits:
    """Stands in for an integer literal longer than Python converts (the row holding it is skipped)."""


_TOO_MANY_DIGITS = _TooManyDigits()


def _checked_int(digits: str) -> Any:
    limit = sys.get_int_max_str_digits() or len(digits)
    return int(digits) if len(digits.lstrip("-")) <= limit else _TOO_MANY_DIGITS


def _bad_value(value: Any) -> bool:
    """True if ``value`` holds a lone surrogate (``\\ud800``) or an over-long integer: it cannot be kept as is."""
    try:
        json.dumps(value, ensure_ascii=False, default=_reject).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError, RecursionError):
        return True
    return False


def _reject(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def parse_json_value(text: str) -> Any:
    """One JSON value, or :data:`INVALID_JSON` for anything Python's parser rejects or the kit cannot keep.

    Rejected: syntax errors, integers over 4,300 digits, nesting deeper than the parser's recursion limit,
    and strings with lone surrogates such as ``"\\ud800"`` (they cannot be written as UTF-8).
    """
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError, so is the 4,300-digit limit
        return INVALID_JSON
    if _SURROGATE_ESCAPE.search(text) and _bad_value(value):
        return INVALID_JSON
    return value


def _array_rows(path: Path, text: str) -> list[Any]:
    """The rows of a JSON array file; a row with an over-long integer or a lone surrogate becomes INVALID_JSON."""
    try:
        rows = json.loads(text)
        big = False
    except json.JSONDecodeError as exc:
        raise KitError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); fix that spot, "
            "or save the file as JSON Lines (one object per line) so a bad row is skipped and counted"
        ) from None
    except ValueError:  # an integer over 4,300 digits: parse again, marking such integers
        rows = json.loads(text, parse_int=_checked_int)
        big = True
    except RecursionError:
        raise KitError(
            f"{path}: a value is nested more deeply than Python's JSON parser allows (about 1,000 levels); "
            "fix or remove that row, or save the file as JSON Lines so such a row is skipped and counted"
        ) from None
    if not isinstance(rows, list):
        return [rows]
    if big or _SURROGATE_ESCAPE.search(text):
        rows = [INVALID_JSON if _bad_value(row) else row for row in rows]
    return rows


def several_values(line: str) -> list[Any]:
    """The JSON values of a line holding more than one (``{...} {...}``, a lost newline), else ``[]``."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    try:
        while True:
            while position < len(line) and line[position] in " \t\r,":
                position += 1
            if position >= len(line):
                break
            value, position = decoder.raw_decode(line, position)
            values.append(value)
    except (ValueError, RecursionError):
        return []
    if len(values) < 2 or any(_SURROGATE_ESCAPE.search(line) and _bad_value(v) for v in values):
        return []
    return values


def iter_json_rows(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """Rows of a JSON list or JSON Lines file as ``(line_number, value)``.

    A file whose first non-blank character is ``[`` is one JSON array (a syntax error raises
    :class:`KitError` with line and column; a row with an over-long integer or a lone surrogate becomes
    :data:`INVALID_JSON`); anything else is JSON Lines, where a line that :func:`parse_json_value` rejects
    yields :data:`INVALID_JSON` so the loader counts it ("invalid_json") instead of failing a 50k-line
    file for one bad line. A line holding several JSON values (a lost newline) yields each of them, under
    the same line number. Blank lines are not rows. A JSONL file in which no line parses raises.
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        # A JSON array has no per-row line numbers worth computing; number rows from 1.
        yield from enumerate(_array_rows(path, text), start=1)
        return
    parsed = 0
    bad = 0
    # split on "\n" only: str.splitlines() would also break at U+2028 and friends, which JSON allows raw.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        value = parse_json_value(line)
        if value is INVALID_JSON:
            several = several_values(line)
            if several:
                parsed += len(several)
                for item in several:
                    yield number, item
                continue
            bad += 1
            yield number, INVALID_JSON
            continue
        parsed += 1
        yield number, value
    if bad and not parsed:
        raise KitError(
            f"{path}: no line is valid JSON; expected JSON Lines (one JSON object per line) or a JSON array"
        )
