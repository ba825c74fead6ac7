"""The ``kit`` command line (also ``python -m kit``).

Each command group lives next to the code it drives and registers itself here through a
``register(subparsers)`` function; heavy imports happen only when a command runs.
Every error ends as one line on stderr, never a traceback (``--debug`` anywhere on the line adds it):
:class:`kit.errors.KitError` (bad input) exits 2, :class:`kit.errors.RunFailed` and any unexpected error
exit 1, Ctrl-C exits 130. The wrapping is here, around every registered command, so a new command is
covered without code of its own.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from kit.errors import KitError

# Modules that contribute command groups, each with ``register(subparsers)``.
_COMMAND_MODULES = ("kit.builders.cli", "kit.builders.shapes", "kit.notebooks.hygiene", "kit.data.cli", "kit.batch.cli",
                    "kit.notebooks.export_script", "kit.export.parity")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every command group registered."""
    parser = argparse.ArgumentParser(prog="kit", description="Unsloth notebook kit: tiny model, data reports, batches.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (anywhere on the line)")
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
    """Parse ``argv`` and run the chosen command; returns the process exit code (see the module doc)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    cut = args_list.index("--") if "--" in args_list else len(args_list)
    debug = "--debug" in args_list[:cut] or os.environ.get("KIT_DEBUG") == "1"
    args_list = [a for i, a in enumerate(args_list) if not (a == "--debug" and i < cut)]
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        return int(handler(args) or 0)
    except SystemExit:
        raise
    except BaseException as exc:  # every error becomes one line; the traceback only with --debug
        return report_error(exc, debug)


def error_line(exc: BaseException) -> tuple[str, int]:
    """The one line (without "error: ") and the exit code for ``exc``."""
    if isinstance(exc, KitError):
        return " ".join(str(exc).split()) or type(exc).__name__, exc.exit_code
    if isinstance(exc, MemoryError):
        return "out of memory; use a smaller input (or split it) or a machine with more memory", 1
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        what = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{where}{what}: the disk is full; free some space or write somewhere else", 1
        return f"{where}{what}", 1
    text = " ".join(str(exc).split())[:300]
    return f"unexpected {type(exc).__name__}{': ' + text if text else ''} (rerun with --debug for the traceback)", 1


def report_error(exc: BaseException, debug: bool = False) -> int:
    """Print ``exc`` as one line on stderr (after its traceback when ``debug``); return the exit code."""
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    if isinstance(exc, BrokenPipeError):  # `kit data report ... | head` closed the pipe: not worth a message
        try:
            sys.stderr.close()
        except OSError:
            pass
        return 0
    if debug:
        traceback.print_exception(exc)
    line, code = error_line(exc)
    try:
        print(f"error: {line}", file=sys.stderr)
    except (OSError, ValueError):
        pass
    return code


if __name__ == "__main__":
    sys.exit(main())
