"""The text rules of :mod:`kit.data.text`, vectorised over whole Arrow string columns (no per-row Python).

Used by the medical loader on hundreds of thousands of rows: Arrow compute kernels find the rows that
need a rule and rewrite only those.
"""

from __future__ import annotations

from typing import Any

from kit.data.text import _LONGEST_PLACEHOLDER, _SPACE_CLASS, EDGE_CHARS, PLACEHOLDERS

# Rows that some rule of normalise_text would change. Literal characters, not \u escapes: the pattern goes to
# Arrow's RE2, which has no \u syntax (pandas would silently fall back to per-row Python regexes).
_NEEDS_WORK = "[\r\t\u3000\u00a0\ufeff\u200b]|  | \n|\n "


def needs_normalising(values: Any) -> Any:
    """Numpy bool mask of the rows that :func:`kit.data.text.normalise_text` would change.

    One RE2 scan for CR, tab, U+3000 / NBSP / BOM / zero-width space anywhere, doubled spaces and spaces
    next to a newline; then the first and last *byte* of each row for ASCII whitespace at the edges (an
    ASCII byte is never part of a multi-byte character, and the multi-byte spaces are caught anywhere).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = values.cast(pa.binary())  # same buffers, no copy: byte slices instead of character slices
    edges = pa.array([b" ", b"\n", b"\r", b"\t"], pa.binary())
    needs = pc.or_(
        pc.match_substring_regex(values, _NEEDS_WORK),
        pc.or_(
            pc.is_in(pc.binary_slice(raw, 0, 1), value_set=edges),
            pc.is_in(pc.binary_slice(raw, -1), value_set=edges),
        ),
    )
    return needs.to_numpy(zero_copy_only=False)


def normalise_array(values: Any) -> Any:
    """Vectorised :func:`kit.data.text.normalise_text` for an Arrow string (chunked) array.

    Only the rows that some rule would change are rewritten (Arrow kernels on that subset, then one
    replace-with-mask), so a clean column costs one scan and no copy.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    needs = needs_normalising(values)
    if not needs.any():
        return values
    mask = pa.array(needs)
    part = pc.filter(values, mask)
    part = pc.replace_substring(pc.replace_substring(part, "\r\n", "\n"), "\r", "\n")
    part = pc.replace_substring_regex(part, _SPACE_CLASS + "+", " ")  # literal characters: RE2 has no \u
    part = pc.replace_substring_regex(part, " ?\n ?", "\n")
    part = pc.utf8_trim(part, EDGE_CHARS)
    part = part.combine_chunks() if isinstance(part, pa.ChunkedArray) else part
    return pc.replace_with_mask(values, mask, part)


def placeholder_mask(values: Any) -> Any:
    """Vectorised :func:`kit.data.text.is_placeholder`: a numpy bool mask (only short strings are compared)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.utf8_length(values).to_numpy(zero_copy_only=False)
    mask = np.zeros(len(lengths), dtype=bool)
    short = lengths <= _LONGEST_PLACEHOLDER
    if short.any():
        lowered = pc.utf8_lower(pc.filter(values, pa.array(short)))
        mask[short] = pc.is_in(lowered, value_set=pa.array(sorted(PLACEHOLDERS))).to_numpy(
            zero_copy_only=False
        )
    return mask
