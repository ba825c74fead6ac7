"""Notebooks: what keeps the notebooks thin, runnable anywhere, and clean in git.

Offers :mod:`~kit.notebooks.install_cell` (the install cell's one source of truth) and
:mod:`~kit.notebooks.install` (what that cell calls once the kit is importable: torch pinned, the kit's
needs, unsloth), :mod:`~kit.notebooks.files` (reading notebooks and their ``parameters`` cell),
:mod:`~kit.notebooks.hygiene` (``kit notebooks clean|check``), :mod:`~kit.notebooks.params` (parameter help
and the README table), :mod:`~kit.notebooks.outputs` (output and stderr counts) and
:mod:`~kit.notebooks.export_script` (a notebook as a plain script). Importing this package loads nothing:
the install cell imports it before anything but the kit is installed.
"""
