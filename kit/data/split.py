"""A deterministic train / held-out split, so evaluation uses examples the model never saw."""

from __future__ import annotations

from typing import Any

from kit.errors import KitError


def holdout_size(n: int, holdout: float | int) -> int:
    """How many of ``n`` examples go to the held-out side: a fraction (0 < f < 1) or a count; 1..n-1."""
    if isinstance(holdout, bool) or not isinstance(holdout, int | float):
        raise KitError(
            f"holdout={holdout!r}: give a fraction between 0 and 1 (e.g. 0.1) or a whole count (e.g. 50)"
        )
    if n < 2:
        raise KitError(
            f"the dataset has {n} example{'s' if n != 1 else ''}: a train/held-out split needs at least 2; "
            "load more data (our guidance: start from about 50 good examples)"
        )
    if isinstance(holdout, float):
        if not 0.0 < holdout < 1.0:
            raise KitError(
                f"holdout={holdout}: a fraction must be between 0 and 1 (exclusive); for a count pass an int"
            )
        count = round(n * holdout)
    else:
        if not 1 <= holdout <= n - 1:
            raise KitError(f"holdout={holdout}: a count must be between 1 and {n - 1} for {n} examples")
        count = holdout
    return min(max(count, 1), n - 1)


def train_holdout_split(dataset: Any, holdout: float | int = 0.1, seed: int = 3407) -> tuple[Any, Any]:
    """Split ``dataset`` into (train, held-out), the same for the same seed; each side keeps the original order.

    ``holdout`` is a fraction (0.1) or a count (50); each side gets at least one example. Raises
    :class:`KitError` for fewer than 2 examples or an impossible ``holdout``.
    """
    import numpy as np

    n = len(dataset)
    count = holdout_size(n, holdout)
    order = np.random.default_rng(seed).permutation(n)
    held = np.sort(order[:count])
    train = np.sort(order[count:])
    return dataset.select(train.tolist()), dataset.select(held.tolist())
