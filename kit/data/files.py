"""Finding and opening data files: folder walks, git-LFS pointers, strict codec detection, JSON/JSONL rows.

Codecs are tried in an order that cannot mis-decode: UTF-8 (BOM or not) first, because GBK would happily
turn many UTF-8 files into mojibake; then GBK, then GB18030 (a superset of GBK, for the 4-byte characters).
Every attempt decodes the WHOLE file strictly: a GBK file whose first character outside GB2312 sits 100 KB
in is still recognised, and nothing is ever decoded with ``errors="replace"``.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.paths import resolve_path

# Tried in this order; the first that decodes the whole file wins. (gb2312 is never tried: GBK covers it.)
CODECS = ("utf-8", "gbk", "gb18030")
LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
_BOM = codecs.BOM_UTF8
_CHUNK = 1 << 20


def find_files(path: str | os.PathLike[str], suffixes: tuple[str, ...], kind: str) -> tuple[Path, list[Path]]:
    """Resolve ``path`` and list the data files it names: itself, or every ``suffixes`` file below it (sorted)."""
    root = resolve_path(path)
    if root.is_file():
        return root, [root]
    if not root.exists():
        raise KitError(
            f"{path}: no such file or folder (looked in the working directory and the repository root)"
        )
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise KitError(
            f"{root}: no {'/'.join(suffixes)} files in this folder; point the {kind} loader at a file or a folder of them"
        )
    return root, files


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


def _decode_error(path: Path, exc: UnicodeDecodeError, raw: bytes) -> KitError:
    start = exc.start
    bad = raw[start : start + 4]
    return KitError(
        f"{path}: cannot decode as {', '.join(CODECS)} (tried in that order); the last attempt ({exc.encoding}) "
        f"failed at byte offset {start} ({bad!r}). Re-save the file as UTF-8 (e.g. `iconv -f <its codec> -t UTF-8`), "
        "or check that it is a text file and not truncated"
    )


def decode_bytes(path: Path, raw: bytes) -> tuple[str, str]:
    """Decode a whole file strictly with the first codec in :data:`CODECS` that works; returns (text, codec)."""
    check_not_lfs(path, raw[: len(LFS_MAGIC)])
    last: UnicodeDecodeError | None = None
    for codec in CODECS:
        try:
            text = raw.decode("utf-8-sig" if codec == "utf-8" else codec)
        except UnicodeDecodeError as exc:
            last = exc
            continue
        return text, _codec_name(codec, raw)
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

    Returns the codec (``utf-8``, ``utf-8-sig`` for UTF-8 with a BOM, ``gbk`` or ``gb18030``) and the
    content as UTF-8 chunks (BOM dropped) for a parser to read through :class:`ChunkReader`. Reading goes
    8 MiB at a time, so a big file never exists as bytes, text and UTF-8 at once. Raises
    :class:`KitError` naming the file and the first undecodable byte's offset if no codec decodes it.
    """
    with open(path, "rb") as handle:
        head = handle.read(len(LFS_MAGIC))
    check_not_lfs(path, head)
    for codec in CODECS:
        decoder = codecs.getincrementaldecoder("utf-8-sig" if codec == "utf-8" else codec)(errors="strict")
        chunks: list[bytes] = []
        try:
            with open(path, "rb") as handle:
                for raw in iter(lambda handle=handle: handle.read(_CHUNK), b""):
                    text = decoder.decode(raw)
                    chunks.append(raw if codec == "utf-8" else text.encode("utf-8"))
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        if codec == "utf-8" and head.startswith(_BOM):
            chunks[0] = chunks[0][len(_BOM) :]
        return _codec_name(codec, head), chunks
    _raise_undecodable(path)
    raise AssertionError("unreachable")  # pragma: no cover


class ChunkReader(io.RawIOBase):
    """A read-only file over a list of byte chunks, dropping each chunk once read (memory shrinks as it goes)."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self._pending = list(reversed(chunks))
        chunks.clear()
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._view and self._pending:
            self._view = memoryview(self._pending.pop())
        count = min(len(buffer), len(self._view))
        buffer[:count] = self._view[:count]
        self._view = self._view[count:]
        return count


def read_text(path: Path) -> tuple[str, str]:
    """Read and strictly decode a whole (small) text file; returns (text, codec)."""
    raw = path.read_bytes()
    return decode_bytes(path, raw)


INVALID_JSON = object()


def iter_json_rows(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """Rows of a JSON list or JSON Lines file as ``(line_number, value)``.

    A file whose first non-blank character is ``[`` is one JSON array (a syntax error raises
    :class:`KitError` with line and column); anything else is JSON Lines, where a line that does not parse
    yields :data:`INVALID_JSON` so the loader counts it ("invalid_json") instead of failing a 50k-line
    file for one bad line. Blank lines are not rows. A JSONL file in which no line parses raises.
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KitError(
                f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); fix that spot, "
                "or save the file as JSON Lines (one object per line) so a bad row is skipped and counted"
            ) from None
        # A JSON array has no per-row line numbers worth computing; number rows from 1.
        yield from enumerate(rows, start=1)
        return
    parsed = 0
    bad = 0
    # split on "\n" only: str.splitlines() would also break at U+2028 and friends, which JSON allows raw.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            yield number, INVALID_JSON
            continue
        parsed += 1
        yield number, value
    if bad and not parsed:
        raise KitError(
            f"{path}: no line is valid JSON; expected JSON Lines (one JSON object per line) or a JSON array"
        )
