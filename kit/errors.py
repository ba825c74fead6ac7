"""The exception types for failures the CLI reports in one line (bad input, a failed run).

A :class:`KitError` message names the file, the row or entry, and the fix; the CLI prints it without a
traceback and exits with :attr:`KitError.exit_code` (2: bad input); a notebook cell shows it as that one line
too. :class:`RunFailed` is for a run that could not finish for reasons outside the input (a full disk, a tool
that failed): exit code 1.
"""

from __future__ import annotations


class KitError(Exception):
    """A problem with the user's input or set-up, explained in the message."""

    exit_code = 2

    def _render_traceback_(self) -> list[str]:
        """What Jupyter (IPython) shows when a notebook cell raises this: the one line, no traceback."""
        return [f"{type(self).__name__}: {self}"]


class RunFailed(KitError):
    """A run that failed although its input was fine (disk full, a subprocess that failed), explained."""

    exit_code = 1
