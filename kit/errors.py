"""The one exception type for mistakes a user can fix (bad file, bad plan, missing tool).

Its message names the file, the row or entry, and the fix; the CLI prints it without a traceback.
"""

from __future__ import annotations


class KitError(Exception):
    """A problem with the user's input or set-up, explained in the message."""
