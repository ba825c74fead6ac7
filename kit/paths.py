"""Where things are: the repository root and paths given relative to it.

Notebooks run with the notebook folder as working directory (Jupyter), the repository root (papermill
from the CLI) or anywhere (a copied cell), so a relative ``data/...`` path is looked up in the working
directory first and then under the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout that holds ``data/`` and ``notebooks/``: ``$KIT_ROOT``, else the parent of this package."""
    env = os.environ.get("KIT_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """Resolve ``path`` against the working directory, then the repository root; absolute paths pass through."""
    try:
        return _resolve(path)
    except RuntimeError as exc:  # Python 3.11: "Symlink loop from ..."
        from kit.errors import KitError

        raise KitError(f"{path}: cannot follow this path ({exc}); fix or remove the symbolic link") from None


def _resolve(path: str | os.PathLike[str]) -> Path:
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    from_root = repo_root() / candidate
    return from_root.resolve() if from_root.exists() else candidate.resolve()
