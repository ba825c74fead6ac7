"""Bring a gpu_check.sh run home: copy at most 7 files from its work folder to the top of ``$OUT``.

What comes back from a GPU machine is at most 8 files of 16 MiB, no deeper than ``$OUT/a/b/file``; the run
works elsewhere and calls this after every step, so a run cut short still leaves its latest state in ``$OUT``:

  summary.json      every step: status, rc, seconds, log (+ mode, budget, caps, GPU, versions from the probe)
  gpu_check.log     the script's own lines
  probe.json        the probe's findings
  speed_0.5b.json   benchmarks/train_speed.py at the Qwen2.5-0.5B shape (speed_1.5b.json when time remained)
  plan_summary.md   kit batch's summary of the GPU plan
  logs.tar.gz       every step's log, the plan's manifests, metrics.json, parameters and executed notebooks
                    (no weights, no file over 4 MiB; under 16 MiB)

  python benchmarks/gpu_publish.py WORK OUT [--final] [--seconds S]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

MAX_FILES = 7
MAX_BYTES = 16 * 2**20
MAX_MEMBER_BYTES = 4 * 2**20
# Kept in logs.tar.gz; anything else (adapters, merged models, checkpoints, plots) stays behind.
KEEP_SUFFIXES = (".log", ".json", ".jsonl", ".ipynb", ".md", ".csv", ".yaml", ".txt")
SKIP_NAMES = ("adapter_config.json", "tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json",
              "special_tokens_map.json", "trainer_state.json", "vocab.json", "merges.txt", "added_tokens.json")
COPIED = ("gpu_check.log", "probe.json", "speed_0.5b.json", "speed_1.5b.json")


def _summary(work: Path, final: bool, seconds: int | None) -> dict[str, Any]:
    """summary.json: the steps so far (``summary.jsonl``) with the run's settings and the probe's headline."""
    lines = (work / "summary.jsonl").read_text(encoding="utf-8").splitlines() if (work / "summary.jsonl").is_file() else []
    meta = json.loads((work / "meta.json").read_text(encoding="utf-8")) if (work / "meta.json").is_file() else {}
    summary: dict[str, Any] = {**meta, "complete": final, "seconds": seconds, "steps": [json.loads(x) for x in lines if x]}
    summary["dry_run"] = meta.get("mode") == "dry-run"
    probe = work / "probe.json"
    if probe.is_file():
        found = json.loads(probe.read_text(encoding="utf-8"))
        summary["gpu"] = found.get("device") or found.get("nvidia_smi")
        summary["versions"] = {k: found.get(k) for k in ("python", "torch", "torch_cuda", "transformers", "trl", "peft",
                                                         "unsloth", "unsloth_zoo", "bitsandbytes", "triton") if k in found}
    return summary


def _wanted(path: Path, work: Path) -> bool:
    """A small text record worth keeping (logs, manifests, metrics.json, executed notebooks), never weights."""
    rel = path.relative_to(work)
    if rel.parts[0] in ("site", "shapes") or path.name in SKIP_NAMES or path.suffix not in KEEP_SUFFIXES:
        return False
    if any(part.startswith("checkpoint-") for part in rel.parts):
        return False
    return path.stat().st_size <= MAX_MEMBER_BYTES


def _archive(work: Path, dest: Path) -> list[str]:
    """logs.tar.gz of the wanted files (smallest first until 16 MiB); what was left out and why."""
    files = sorted((p for p in work.rglob("*") if p.is_file() and not p.is_symlink() and _wanted(p, work)),
                   key=lambda p: p.stat().st_size)
    left_out = []
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(work)))
            if buffer.tell() > MAX_BYTES - 2**20:  # compressed so far: keep a margin for what is still buffered
                left_out.append(f"{path.relative_to(work)} and later files: logs.tar.gz reached its size limit")
                break
    data = buffer.getvalue()
    if len(data) > MAX_BYTES:
        raise SystemExit(f"gpu_publish: logs.tar.gz would be {len(data) / 2**20:.1f} MiB (limit 16 MiB)")
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return left_out


def publish(work: Path, out: Path, final: bool = False, seconds: int | None = None) -> list[str]:
    """Write the (at most 7) result files into ``out``; their names."""
    out.mkdir(parents=True, exist_ok=True)
    summary = _summary(work, final, seconds)
    for name in COPIED:
        if (work / name).is_file():
            shutil.copyfile(work / name, out / name)
    plan_md = work / "plan" / "summary.md"
    if plan_md.is_file():
        shutil.copyfile(plan_md, out / "plan_summary.md")
    summary["left_out_of_logs"] = _archive(work, out / "logs.tar.gz")
    names = sorted({p.name for p in out.iterdir()} | {"summary.json"})
    summary["out_files"] = names
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if len(names) > MAX_FILES:
        print(f"gpu_publish: {out} holds {len(names)} files, more than {MAX_FILES}: {', '.join(names)}", file=sys.stderr)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work")
    parser.add_argument("out")
    parser.add_argument("--final", action="store_true")
    parser.add_argument("--seconds", type=int)
    args = parser.parse_args(argv)
    names = publish(Path(args.work), Path(args.out), args.final, args.seconds)
    return 0 if len(names) <= MAX_FILES else 1


if __name__ == "__main__":
    sys.exit(main())
