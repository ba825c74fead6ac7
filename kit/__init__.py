"""Unsloth notebook kit: the helpers that keep the notebooks thin, one package per stage of a run.

Stages, lowest first: the ground floor (``errors``, ``paths``, ``runinfo``, ``plots``, ``runtime/``), then
``formatting``, ``rewards``, ``data``, ``builders``, ``training``, ``evaluation``, ``export``, ``notebooks``,
``batch`` and the ``cli``; ARCHITECTURE.md says what each holds and which way imports go.

Importing ``kit`` is cheap: heavy libraries (torch, transformers, unsloth, trl) are imported
only inside the submodules and functions that need them.
"""

__version__ = "0.1.0"

from kit.runtime.headless import quiet_progress as _quiet_progress

# Headless kernels (kit batch, plain papermill): progress widgets off before transformers or datasets load,
# so no frozen "Loading weights: 0%" is saved in the executed notebook. Does nothing interactively.
_quiet_progress()
