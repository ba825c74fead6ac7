"""Where a batch's runs execute: this machine's process pool (``local``, the default), a Ray cluster (``ray``)
or Slurm through submitit (``slurm``). The runner keeps every decision (order, skips, manifests, summary,
``--resume``, Ctrl-C); a backend only starts one run's command and reports when it ended.

Offers :func:`get_backend` (a backend by name); the shapes every backend follows and the command a run
executes are in :mod:`kit.batch.backends.base`, one module per backend beside it.
"""

from __future__ import annotations

from kit.batch.backends.base import Backend
from kit.errors import KitError

BACKENDS = ("local", "ray", "slurm")
INSTALL_HINT = {
    "ray": "--backend ray needs Ray: pip install -e '.[ray]' (or pip install 'ray[default]>=2.40')",
    "slurm": "--backend slurm needs submitit: pip install -e '.[slurm]' (or pip install submitit)",
}


def get_backend(name: str, address: str | None = None) -> Backend:
    """The backend called ``name``; a KitError with the install command when its library is missing."""
    if name == "local":
        from kit.batch.backends.local import LocalBackend

        if address:
            raise KitError("--address is for --backend ray (a Ray cluster's address); the local backend has none")
        return LocalBackend()
    if name not in BACKENDS:
        raise KitError(f"unknown backend '{name}'; choose one of {', '.join(BACKENDS)}")
    module = "ray" if name == "ray" else "submitit"
    try:
        __import__(module)
    except ImportError as exc:
        raise KitError(INSTALL_HINT[name]) from exc
    if name == "ray":
        from kit.batch.backends.ray_cluster import RayBackend

        return RayBackend(address)
    from kit.batch.backends.slurm import SlurmBackend

    if address:
        raise KitError("--address is for --backend ray; Slurm settings come from KIT_SLURM_* variables")
    return SlurmBackend()
