"""Ground floor: the session the kit runs in, needed by every stage and importing none of them.

Offers :mod:`~kit.runtime.headless` (is anyone watching this kernel? headless runs print lines, not widgets),
:mod:`~kit.runtime.precision` (what ``dtype="auto"`` loads in on this CPU or GPU, and why) and
:mod:`~kit.runtime.redact` (the one redactor: secrets found by name and by value never reach a file).
"""
