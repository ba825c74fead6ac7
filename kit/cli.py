"""The ``kit`` command line (also ``python -m kit``).

Each command group lives next to the code it drives and registers itself here through a
``register(subparsers)`` function; heavy imports happen only when a command runs.
Errors the user can fix (:class:`kit.errors.KitError`) print one message and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kit.errors import KitError

# Modules that contribute command groups, each with ``register(subparsers)``.
_COMMAND_MODULES = ("kit.builders.cli", "kit.builders.shapes", "kit.notebooks", "kit.data.cli", "kit.batch.cli",
                    "kit.export_script")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every command group registered."""
    parser = argparse.ArgumentParser(prog="kit", description="Unsloth notebook kit: tiny model, data reports, batches.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command group not built yet must not break the others
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue
        module.register(subparsers)
    return parser


def _version() -> str:
    from kit import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kit data report ... | head` closed the pipe: not an error worth a traceback
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
