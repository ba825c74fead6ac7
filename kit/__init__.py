"""Unsloth notebook kit: the helpers that keep the notebooks thin.

Importing ``kit`` is cheap: heavy libraries (torch, transformers, unsloth, trl) are imported
only inside the submodules and functions that need them.
"""

__version__ = "0.1.0"
