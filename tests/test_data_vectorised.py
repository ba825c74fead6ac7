"""The vectorised (Arrow/numpy) text rules agree exactly with the per-string rules, on awkward random text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.data.arrowtext import needs_normalising, normalise_array, placeholder_mask
from kit.data.dedupe import duplicated_pairs, sampled_keys
from kit.data.text import is_placeholder, normalise_text

# Characters every rule cares about, plus ordinary ASCII and Chinese text.
ALPHABET = st.sampled_from(
    [*" \t\r\n\u3000\u00a0\ufeff\u200bab无空N/A-？。，中文", "  ", " \n", "\r\n"]
)
TEXT = st.lists(ALPHABET, max_size=12).map("".join)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _chunked(values: list[str], cut: int) -> pa.ChunkedArray:
    """Two chunks, the second a slice with a non-zero offset, like Arrow hands them to the loader."""
    cut = min(cut, len(values))
    padded = pa.array(["pad", *values[cut:]], pa.string()).slice(1)
    return pa.chunked_array([pa.array(values[:cut], pa.string()), padded], pa.string())


@SETTINGS
@given(st.lists(TEXT, max_size=30), st.integers(0, 30))
def test_normalise_array_matches_normalise_text(values: list[str], cut: int) -> None:
    column = _chunked(values, cut)
    assert normalise_array(column).to_pylist() == [normalise_text(v) for v in values]
    flagged = needs_normalising(column)
    assert all(flagged[i] for i, v in enumerate(values) if normalise_text(v) != v)  # never misses a row


@SETTINGS
@given(st.lists(TEXT, max_size=30), st.integers(0, 30))
def test_placeholder_mask_matches_is_placeholder(values: list[str], cut: int) -> None:
    normalised = [normalise_text(v) for v in values]
    assert placeholder_mask(_chunked(normalised, cut)).tolist() == [is_placeholder(v) for v in normalised]


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["问", "问题", "a", "", "问题？ "]), st.sampled_from(["答", "", "b b"])),
        max_size=40,
    ),
    st.lists(st.booleans(), max_size=40),
    st.integers(0, 40),
)
def test_duplicated_pairs_matches_a_python_reference(
    pairs: list[tuple[str, str]], among: list[bool], cut: int
) -> None:
    among = (among + [True] * len(pairs))[: len(pairs)]
    seen: set[tuple[str, str]] = set()
    expected = []
    for pair, considered in zip(pairs, among, strict=True):
        expected.append(considered and pair in seen)
        if considered:
            seen.add(pair)
    first = _chunked([p[0] for p in pairs], cut)
    second = _chunked([p[1] for p in pairs], cut)
    assert duplicated_pairs(first, second, np.array(among, dtype=bool)).tolist() == expected


def test_sampled_keys_equal_for_equal_strings_across_chunks() -> None:
    values = ["血压高怎么办？" * 7, "", "a", "血压高怎么办？" * 7, "血压高怎么办！" * 7]
    keys = sampled_keys(_chunked(values, 2))
    assert keys[0] == keys[3] and keys[0] != keys[4] and keys[1] != keys[2]
