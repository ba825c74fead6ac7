"""Exact duplicate detection over Arrow string columns, vectorised and light on memory.

Hashing whole texts row by row is slow in Python, and dictionary-encoding every text copies the data. So:
a 64-bit key per row from a few bytes sampled at fixed fractions of each text (read through numpy views
of the Arrow buffers) finds the *candidate* rows whose key repeats, and only those are compared exactly.
"""

from __future__ import annotations

from typing import Any

_PRIME = 0x100000001B3  # FNV-1a's 64-bit prime: spreads each mixed word over the key


def _chunks(values: Any) -> list[Any]:
    import pyarrow as pa

    return list(values.chunks) if isinstance(values, pa.ChunkedArray) else [values]


def string_buffers(chunk: Any) -> tuple[Any, Any]:
    """(offsets, data) of one Arrow string array as numpy views: row i is ``data[offsets[i]:offsets[i + 1]]``."""
    import numpy as np
    import pyarrow as pa

    _, offsets_buffer, data_buffer = chunk.buffers()
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[chunk.offset : chunk.offset + len(chunk) + 1]
    offsets = offsets.astype(np.int64)
    if data_buffer is None or offsets[-1] == offsets[0]:
        return offsets - offsets[0], np.zeros(0, dtype=np.uint8)
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


def sampled_keys(values: Any, samples: int = 24) -> Any:
    """A 64-bit key per string from its byte length and bytes at fixed fractions of it (plus its last 8).

    Equal strings always get equal keys (the positions depend only on the length), so the keys find
    duplicate *candidates* without copying or hashing whole texts; unequal strings rarely collide, and a
    collision only costs an exact comparison later.
    """
    import numpy as np

    keys = []
    fractions = np.arange(samples)
    tail = np.arange(1, 9)
    with np.errstate(over="ignore"):
        for chunk in _chunks(values):
            offsets, data = string_buffers(chunk)
            starts, lengths = offsets[:-1], np.diff(offsets)
            key = lengths.astype(np.uint64) * np.uint64(_PRIME)
            if data.size:
                positions = np.concatenate(
                    [
                        starts[:, None] + (lengths[:, None] * fractions) // samples,
                        starts[:, None] + lengths[:, None] - tail,
                    ],
                    axis=1,
                )
                inside = (positions >= starts[:, None]) & (positions < (starts + lengths)[:, None])
                sampled = np.where(inside, data[np.clip(positions, 0, data.size - 1)], 0).astype(np.uint8)
                words = np.ascontiguousarray(sampled).view(np.uint64)
                for column in range(words.shape[1]):
                    key = (key ^ words[:, column]) * np.uint64(_PRIME)
            keys.append(key)
    return np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)


def pair_keys(table: Any) -> Any:
    """One sampled-byte key per (input, output) row of a table (see :func:`sampled_keys`)."""
    import numpy as np

    first, second = sampled_keys(table.column("input")), sampled_keys(table.column("output"))
    with np.errstate(over="ignore"):
        return (first * np.uint64(_PRIME)) ^ second


def dense_codes(*columns: Any) -> Any:
    """One int64 code per row, equal for two rows exactly when every column is equal (dense, 0..k-1)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    key = None
    for column in columns:
        if isinstance(column, pa.ChunkedArray | pa.Array):
            encoded = pc.dictionary_encode(column)  # one dictionary shared by all chunks: no combined copy
            chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
            codes = np.concatenate(
                [c.indices.to_numpy(zero_copy_only=False) for c in chunks] or [np.zeros(0)]
            )
            codes = codes.astype(np.int64)
            del encoded, chunks
        else:
            codes = np.asarray(column, dtype=np.int64)
        key = codes if key is None else key * (int(codes.max(initial=0)) + 1) + codes
        key = np.unique(key, return_inverse=True)[1].astype(
            np.int64
        )  # renumber so the next product cannot overflow
    return key


def duplicated_pairs(first: Any, second: Any, among: Any = None, keys: Any = None) -> Any:
    """Numpy bool mask: True where the (first, second) pair already occurred in an earlier row (exact).

    ``among`` (a bool mask) limits the test to those rows: others are never duplicates nor originals.
    Two stages keep time and memory low: sampled-byte keys of both texts (:func:`pair_keys`; pass ``keys``
    if already computed) find the candidate rows whose key repeats; only those are compared in full
    (dictionary-encoded). Equal pairs always share the key, so nothing is missed, and the first
    occurrence is the one kept.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(first)
    among = np.ones(n, dtype=bool) if among is None else np.asarray(among, dtype=bool)
    result = np.zeros(n, dtype=bool)
    if among.sum() < 2:
        return result
    rows = np.flatnonzero(among)
    if keys is None:
        keys = pair_keys(pa.table({"input": first, "output": second}))
    # Rows whose key occurs more than once, found by sorting the keys (cheaper in memory than np.unique).
    order = np.argsort(keys[rows], kind="stable")
    ordered = keys[rows][order]
    same = ordered[1:] == ordered[:-1]
    repeats = np.zeros(len(rows), dtype=bool)
    repeats[1:] |= same
    repeats[:-1] |= same
    candidates = np.sort(rows[order[repeats]])
    del order, ordered, same, repeats
    if len(candidates):
        mask = np.zeros(n, dtype=bool)
        mask[candidates] = True
        mask = pa.array(mask)  # Arrow's filter with a mask: much faster than take on chunked arrays
        exact = dense_codes(pc.filter(first, mask), pc.filter(second, mask))
        _, first_seen = np.unique(exact, return_index=True)
        repeated = np.ones(len(candidates), dtype=bool)
        repeated[first_seen] = False
        result[candidates[repeated]] = True
    return result
