"""Loss-trace reference bands: a re-run must give the same numbers, within a stated tolerance, step by step.

Reference file (JSON, written by ``kit batch PLAN --write-reference REF.json``; keyed by run name)::

    {
      "format": "kit-loss-reference/1",
      "abs_tol": 0.02, "rel_tol": 0.01,
      "written_at": "2026-01-01T00:00:00+00:00", "git_commit": "…",
      "runs": {
        "alpaca-lora_r=8": {
          "notebook": "notebooks/01_alpaca_sft.ipynb", "run_hash": "…", "device": "…",
          "steps": [{"step": 1, "centre": 2.8312, "tolerance": 0.0283}, ...]
        }
      }
    }

A step passes when ``|loss - centre| <= tolerance``; tolerance is ``max(abs_tol, rel_tol * |centre|)``
when written, and may be edited by hand per step. ``--check-reference`` fails a run whose trace leaves the
band (the message names the step, the value and the band) or whose steps differ from the reference's; a
run without an entry is reported "no reference" and not failed. Writing merges into an existing file:
entries for runs of this batch are replaced, others are kept.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kit.batch.manifest import git_info, read_json, utc_now, write_json
from kit.errors import KitError

FORMAT = "kit-loss-reference/1"
DEFAULT_ABS_TOL = 0.02
DEFAULT_REL_TOL = 0.01


def band(trace: list[dict[str, Any]], abs_tol: float = DEFAULT_ABS_TOL, rel_tol: float = DEFAULT_REL_TOL) -> list[dict[str, Any]]:
    """Reference steps for a loss trace: each point's loss as centre, tolerance ``max(abs, rel × |centre|)``."""
    return [
        {"step": int(p["step"]), "centre": float(p["loss"]),
         "tolerance": round(max(abs_tol, rel_tol * abs(float(p["loss"]))), 8)}
        for p in trace
    ]


def load_reference(path: str | Path) -> dict[str, Any]:
    """The ``runs`` mapping of a reference file; a missing or malformed file is a KitError."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: reference file not found; write one with --write-reference {path}")
    data = read_json(path)
    if data is None or data.get("format") != FORMAT or not isinstance(data.get("runs"), dict):
        raise KitError(f"{path}: not a loss reference (expected JSON with \"format\": \"{FORMAT}\" and \"runs\")")
    for name, entry in data["runs"].items():
        steps = entry.get("steps") if isinstance(entry, dict) else None
        if not isinstance(steps, list) or not all(
            isinstance(s, dict) and {"step", "centre", "tolerance"} <= s.keys() for s in steps
        ):
            raise KitError(f"{path}: runs.{name}: 'steps' must be a list of {{step, centre, tolerance}}")
    return data["runs"]


def check_trace(trace: list[dict[str, Any]], entry: dict[str, Any] | None) -> tuple[str, str]:
    """``("pass" | "fail" | "no reference", detail)`` for a run's loss trace against its reference entry."""
    if entry is None:
        return "no reference", "no reference entry for this run"
    steps = entry["steps"]
    if len(trace) != len(steps):
        return "fail", f"loss trace has {len(trace)} points, the reference has {len(steps)}"
    for point, ref in zip(trace, steps):
        if int(point["step"]) != int(ref["step"]):
            return "fail", f"logged step {point['step']} where the reference has step {ref['step']}"
        loss, centre, tol = float(point["loss"]), float(ref["centre"]), float(ref["tolerance"])
        if not math.isfinite(loss) or abs(loss - centre) > tol + 1e-12:
            return "fail", (
                f"step {ref['step']}: loss {loss:.6g} is outside the reference band {centre:.6g} ± {tol:.3g} "
                f"[{centre - tol:.6g}, {centre + tol:.6g}]"
            )
    return "pass", f"{len(steps)} steps inside the reference band"


def write_reference(
    path: str | Path, runs: dict[str, dict[str, Any]], abs_tol: float = DEFAULT_ABS_TOL, rel_tol: float = DEFAULT_REL_TOL
) -> int:
    """Write bands for ``runs`` (name → manifest with ``loss_trace``) into ``path``, merging; returns the count."""
    if abs_tol < 0 or rel_tol < 0:
        raise KitError("--tolerance-abs and --tolerance-rel must not be negative")
    path = Path(path)
    existing = read_json(path) if path.is_file() else None
    kept = existing["runs"] if existing and existing.get("format") == FORMAT and isinstance(existing.get("runs"), dict) else {}
    entries = dict(kept)
    for name, manifest in runs.items():
        entries[name] = {
            "notebook": (manifest.get("notebook") or {}).get("path"),
            "run_hash": manifest.get("hash"),
            "device": (manifest.get("device") or {}).get("name"),
            "steps": band(manifest.get("loss_trace") or [], abs_tol, rel_tol),
        }
    commit = (git_info() or {}).get("commit")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"format": FORMAT, "abs_tol": abs_tol, "rel_tol": rel_tol, "written_at": utc_now(),
                      "git_commit": commit, "runs": entries})
    return len(runs)
