"""``kit tiny-model DIR``: build the offline tiny model and tokenizer."""

from __future__ import annotations

import argparse
import time

from kit.builders.tiny import TinyModelSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tiny-model`` command."""
    p = subparsers.add_parser("tiny-model", help="build the tiny offline Qwen2 model + BPE tokenizer into DIR")
    p.add_argument("dir", help="output directory (created)")
    p.add_argument("--data", default=None, help="text to train the tokenizer on (default: the repository's data/)")
    p.add_argument("--seed", type=int, default=3407, help="weight initialisation seed (default 3407)")
    p.add_argument("--pretrain-steps", type=int, default=TinyModelSpec.pretrain_steps,
                   help=f"causal-LM warm-up steps on the corpus (default {TinyModelSpec.pretrain_steps}; 0 = random weights)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from kit.builders.tiny import build_tiny_model

    start = time.perf_counter()
    out = build_tiny_model(args.dir, args.data, TinyModelSpec(seed=args.seed, pretrain_steps=args.pretrain_steps))
    import json

    info = json.loads((out / "kit_tiny_model.json").read_text(encoding="utf-8"))
    print(
        f"tiny model: {out} ({info['parameters']:,} parameters, vocab {info['vocab']}, "
        f"{len(info['corpus_files'])} corpus files, {time.perf_counter() - start:.1f} s)"
    )
    return 0
