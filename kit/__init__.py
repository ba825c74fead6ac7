"""Unsloth notebook kit: the helpers that keep the notebooks thin.

Importing ``kit`` is cheap: heavy libraries (torch, transformers, unsloth, trl) are imported
only inside the submodules and functions that need them.
"""

__version__ = "0.1.0"

from kit.runtime.headless import quiet_progress as _quiet_progress

# Headless kernels (kit batch, plain papermill): progress widgets off before transformers or datasets load,
# so no frozen "Loading weights: 0%" is saved in the executed notebook. Does nothing interactively.
_quiet_progress()
