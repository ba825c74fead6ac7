"""``kit data report|convert``: load a data file or folder with the matching loader and show what happened.

``report`` prints the load report (``--json``: exactly one JSON object on stdout with ``files``, ``totals``
and ``quality``); ``convert`` also writes the kept records as clean UTF-8 JSON Lines. The data may be any
data_path the loaders take (file, folder, save_to_disk folder, hub id) or ``--registry dataset_info.json NAME``;
``--columns instruction=question,output=answer`` maps column names; ``--show-skipped N`` prints up to N
skipped rows per reason with their file and line or row. A load that keeps no row exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kit.errors import KitError

KINDS = ("alpaca", "chat", "medical", "gsm8k", "preference")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kit data report`` and ``kit data convert``."""
    data = subparsers.add_parser(
        "data", help="load, check and convert training data (alpaca, chat, medical, gsm8k, preference)"
    )
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    report = actions.add_parser(
        "report", help="print what a loader reads, keeps and skips, and a quality summary"
    )
    convert = actions.add_parser("convert", help="load, clean and write the kept records as UTF-8 JSON Lines")
    for parser in (report, convert):
        parser.add_argument(
            "path",
            nargs="?",
            help="a data file, a folder of them, a save_to_disk folder or a hub id (name:config:split)",
        )
        parser.add_argument(
            "--kind", choices=KINDS, help="which loader reads the data (a registry entry names it)"
        )
        parser.add_argument(
            "--registry",
            nargs=2,
            metavar=("FILE", "NAME"),
            help="read entry NAME of a LLaMA-Factory dataset_info.json",
        )
        parser.add_argument(
            "--columns", help="map the loader's fields to your columns: instruction=question,output=answer"
        )
        parser.add_argument("--config", help="hub id only: the dataset's config (subset)")
        parser.add_argument(
            "--split", help="hub id or save_to_disk folder: the split to read (default train)"
        )
        parser.add_argument(
            "--show-skipped", type=int, default=0, metavar="N", help="print up to N skipped rows per reason"
        )
        parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
        parser.add_argument(
            "--tokenizer", default=None, help="a local tokenizer folder: add token-length statistics"
        )
        parser.add_argument(
            "--no-dedupe", action="store_true", help="medical and chat: keep duplicate rows"
        )
    convert.add_argument(
        "-o", "--output", required=True, help="the .jsonl file to write (folders are created)"
    )
    report.set_defaults(handler=_report)
    convert.set_defaults(handler=_convert)


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from kit.data import load_data
    from kit.data.registry import registry_path

    if args.registry and args.path:
        raise KitError("give either a data path or --registry FILE NAME, not both")
    if not args.registry and not args.path:
        raise KitError("give a data path (file, folder or hub id) or --registry FILE NAME")
    path = registry_path(*args.registry) if args.registry else args.path
    if args.kind is None and not args.registry:
        raise KitError(f"{path}: say which loader reads it with --kind ({'|'.join(KINDS)})")
    options: dict[str, Any] = {"columns": args.columns, "config": args.config, "split": args.split}
    if args.kind in ("medical", "chat"):
        options["dedupe"] = not args.no_dedupe
    return load_data(path, args.kind, **options)


def _tokenizer(path: str | None) -> Any:
    if path is None:
        return None
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise KitError(
            f"--tokenizer {path}: no such folder; pass a local folder holding a tokenizer "
            "(tokenizer.json or tokenizer_config.json, as save_pretrained writes it)"
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise KitError(
            f"--tokenizer {path}: this folder holds no tokenizer that loads ({first}); pass the folder a "
            "tokenizer was saved to with save_pretrained"
        ) from None


def _show(report: Any, args: argparse.Namespace) -> None:
    tokenizer = _tokenizer(args.tokenizer)
    if args.json:
        data = report.to_dict(tokenizer=tokenizer)
        if args.show_skipped:
            data["skipped_rows"] = report.skipped_rows(args.show_skipped)
        print(json.dumps(data, ensure_ascii=False))
        return
    print(report.summary(tokenizer=tokenizer))
    for note in report.files[0].notes.get("registry_ignored", []) if report.files else []:
        print(f"  registry: {note}")
    if args.show_skipped:
        print(report.format_skipped(args.show_skipped))


def _report(args: argparse.Namespace) -> int:
    _, report = _load(args)
    _show(report, args)
    return 0


def write_jsonl(dataset: Any, path: str | Path) -> int:
    """Write every row of ``dataset`` as one UTF-8 JSON object per line (Chinese kept as is); returns the count."""
    import errno
    import os

    from kit.errors import RunFailed

    out = check_output_path(path)
    # A regular file is written to a temporary and renamed (all or nothing); /dev/stdout or a FIFO in place.
    direct = out.exists() and not out.is_file()
    tmp = out if direct else out.with_name(f".{out.name}.tmp")
    count = 0
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            for batch in dataset.iter(batch_size=1000):
                names = list(batch)
                for values in zip(*(batch[n] for n in names), strict=True):
                    handle.write(json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False) + "\n")
                    count += 1
        if not direct:
            os.replace(tmp, out)  # a failed write never leaves half a file under the real name
    except OSError as exc:
        if not direct:
            tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = "the output is incomplete" if direct else "nothing was written"
            raise RunFailed(
                f"{path}: the disk is full after {count} records; {kept}: free some space or write elsewhere"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise KitError(
                f"-o {path}: the folder {out.parent} is not writable ({exc.strerror}); choose another -o path"
            ) from None
        raise KitError(f"{path}: cannot write the output ({exc.strerror or exc}); choose another -o path") from None
    return count


def check_output_path(path: str | Path) -> Path:
    """``path`` as a file to write, or a :class:`KitError` if it is a folder or lies under a file."""
    out = Path(path).expanduser()
    if out.is_dir():
        raise KitError(f"-o {path}: this is a folder; give the .jsonl file to write, e.g. {out / 'clean.jsonl'}")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise KitError(f"-o {path}: {parent} is a file, not a folder; choose another output path")
            break
    return out


def _convert(args: argparse.Namespace) -> int:
    check_output_path(args.output)  # before the load: a bad -o fails at once
    dataset, report = _load(args)
    count = write_jsonl(dataset, args.output)
    _show(report, args)
    print(f"wrote {count} records to {args.output}", file=sys.stderr if args.json else sys.stdout)
    return 0
