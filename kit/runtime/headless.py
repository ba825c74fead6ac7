"""Is anyone watching this kernel live? Headless runs print lines, not progress widgets or token streams.

What a kernel can reliably see, in order (measured with papermill 2.7 / nbclient 0.11 / ipykernel 7):

1. ``KIT_HEADLESS``: ``1/true/yes`` forces headless, ``0/false/no`` forces interactive. ``kit batch`` sets 1.
2. nbclient's command line: nbclient (which papermill, ``jupyter nbconvert --execute`` and testbook use)
   starts ipykernel with ``--HistoryManager.hist_file=:memory:``; Jupyter servers, VS Code and Colab do not.
   papermill itself sets no environment variable, and the ``injected-parameters`` cell is invisible to the
   kernel, so this is the papermill signal.
3. The current execute request's ``allow_stdin``: False when the client cannot answer ``input()``, which
   is every non-interactive executor; JupyterLab, Notebook, VS Code and Colab send True.

Outside a kernel (a plain script, pytest) only ``KIT_HEADLESS`` counts: tqdm already draws plain text there.
Not detectable: whether a human has the page open (comms open only once widgets are used), so no
detection relies on frontend comms.
"""

from __future__ import annotations

import os
import sys

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
NBCLIENT_FLAG = "--HistoryManager.hist_file=:memory:"

# Environment huggingface_hub and datasets read when first imported; transformers follows huggingface_hub.
# (TQDM_DISABLE does not help here: tqdm.notebook, which tqdm.auto picks in a kernel, forces disable=False.)
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}


def _kernel() -> object | None:
    """The running ipykernel, or None outside one (imports nothing new when IPython is not loaded)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


def headless_reason() -> str | None:
    """Why this process counts as headless (``"KIT_HEADLESS"``, ``"nbclient"``, ``"no stdin"``), or None."""
    flag = os.environ.get("KIT_HEADLESS", "").strip().lower()
    if flag in _TRUE:
        return "KIT_HEADLESS"
    if flag in _FALSE:
        return None
    kernel = _kernel()
    if kernel is None:
        return None
    if NBCLIENT_FLAG in sys.argv:
        return "nbclient"
    if getattr(kernel, "_allow_stdin", True) is False:
        return "no stdin"
    return None


def is_headless() -> bool:
    """True when nobody watches the run live (``kit batch``, plain papermill, nbconvert --execute)."""
    return headless_reason() is not None


def quiet_progress() -> bool:
    """When headless, switch off progress widgets and bars (``Loading weights: 0%`` frozen in the saved notebook).

    Sets the environment defaults huggingface_hub and datasets read at import (transformers' own bars follow
    huggingface_hub's), and calls the disable switch of those already imported (never importing one:
    transformers must follow unsloth). The Trainer's bar is switched off separately (``disable_tqdm``).
    Explicit settings win. Returns whether it did anything.
    """
    if not is_headless():
        return False
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    switches = (
        ("transformers.utils.logging", "disable_progress_bar"),
        ("datasets.utils.logging", "disable_progress_bar"),
        ("huggingface_hub.utils", "disable_progress_bars"),
    )
    for module_name, function in switches:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, function):
            getattr(module, function)()
    return True
