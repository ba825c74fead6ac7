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


def sample_data_dir() -> Path:
    """The sample ``data/`` folder: the clone's, else the copy inside the installed package."""
    clone = repo_root() / "data"
    return clone if clone.is_dir() else Path(__file__).resolve().parent / "_sample_data"


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """Resolve ``path`` against the working directory, the repository root, then (for ``data/...``) the
    package's sample data; absolute paths pass through, and a path found nowhere resolves against the cwd."""
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
    if from_root.exists():
        return from_root.resolve()
    if candidate.parts and candidate.parts[0] == "data":
        packaged = sample_data_dir().joinpath(*candidate.parts[1:])
        if packaged.exists():
            return packaged.resolve()
    return candidate.resolve()
