"""Loss-trace reference bands: a re-run must give the same numbers, within a stated tolerance, step by step.

References are kept per machine kind, the things that change the numbers: the device type, the CPU's
instruction level (PyTorch's ``get_cpu_capability``: AVX2, AVX512, ...) or the GPU's name, and the dtype the
run trained in. On CUDA, Unsloth batches padding-free, compiles its cross-entropy and trains under mixed
precision, none of which its CPU fallback does; an AVX2 CPU trains in float32 what an ``avx512_bf16`` CPU
trains in bf16. Reference file (JSON, written by ``kit batch PLAN --write-reference REF.json``)::

    {
      "format": "kit-loss-reference/2",
      "abs_tol": 0.02, "rel_tol": 0.01,
      "devices": {
        "cpu/avx2/float32": {
          "written_at": "2026-01-01T00:00:00+00:00", "git_commit": "…", "device": "AMD EPYC",
          "held_by": {"ATEN_CPU_CAPABILITY": "avx2"},
          "runs": {
            "alpaca-lora_r=8": {
              "notebook": "notebooks/01_alpaca_sft.ipynb", "run_hash": "…", "device": "…",
              "steps": [{"step": 1, "centre": 2.8312, "tolerance": 0.0283}, ...]
            }
          }
        },
        "cpu/avx512/bfloat16": {...}, "cuda/NVIDIA H100 80GB HBM3/bfloat16": {...}, "cpu": {...}
      }
    }

``held_by`` marks bands recorded on a bigger CPU held to a smaller instruction set by environment variables
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``). A key that is a bare
device type (``cpu``, ``cuda``) holds runs whose manifest names no instruction level or dtype (a notebook that
loads no model) and the entries of older files; a run is checked against its own kind first, then its bare
device type. A step passes when ``|loss - centre| <= tolerance``; tolerance is ``max(abs_tol, rel_tol *
|centre|)`` when written, and may be edited by hand per step. ``--check-reference`` fails a run whose trace
leaves the band (the message names the step, the value and the band) or whose steps differ from the
reference's; a run of a kind with no entry is reported "no reference for cpu/avx2/float32" (say) and not
failed. Writing merges into an existing file: entries for runs of this batch on this kind are replaced,
everything else is kept. Version-1 files (one flat ``runs`` mapping, all recorded on CPU) are read as ``cpu``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kit.batch.manifest import git_info, read_json, utc_now, write_json
from kit.errors import KitError

FORMAT = "kit-loss-reference/2"
FORMAT_V1 = "kit-loss-reference/1"
DEFAULT_ABS_TOL = 0.02
DEFAULT_REL_TOL = 0.01


class DeviceReference(dict):
    """The reference entries for one device type, by run name; a run with none gets a "no reference for
    <device>" placeholder (no steps) from :meth:`get`, which :func:`check_trace` reports as not a failure.
    :meth:`entry` finds a run's band by the machine kind its manifest records (:func:`machine_kind`)."""

    def __init__(self, runs: dict[str, Any], device_type: str, kinds: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(runs)
        self.device_type = device_type
        self.kinds = kinds or {}

    def get(self, name: Any, default: Any = None) -> Any:
        if name in self:
            return self[name]
        return {"steps": [], "missing": f"no reference for {self.device_type}"} if default is None else default

    def entry(self, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """The band for run ``name`` on the machine kind of ``manifest`` (its ``device``), else on its bare
        device type, else a "no reference for <kind>" placeholder."""
        kind = machine_kind(manifest.get("device"), self.device_type)
        for key in (kind, kind.split("/", 1)[0]):
            runs = (self.kinds.get(key) or {}).get("runs") or {}
            if name in runs:
                return runs[name]
        return {"steps": [], "missing": f"no reference for {kind}"}


def machine_kind(device: Any, default_type: str = "cpu") -> str:
    """The reference key of a run's ``device`` record: ``cpu/<capability>/<dtype>`` (``cpu/avx2/float32``),
    ``cuda/<gpu name>/<dtype>``, or the bare device type when the record names neither (no model loaded)."""
    device = device if isinstance(device, dict) else {}
    kind = str(device.get("type") or default_type)
    level = device.get("capability") if kind == "cpu" else device.get("name") if kind == "cuda" else None
    if not level:
        return kind
    parts = [kind, str(level).lower() if kind == "cpu" else str(level)]
    if device.get("dtype"):
        parts.append(str(device["dtype"]))
    return "/".join(parts)


def current_device_type() -> str:
    """``cuda`` when a GPU is visible to this process (nvidia-smi, cheaply, without importing torch), else ``cpu``."""
    from kit.batch.resources import detect_device

    return str(detect_device().get("type") or "cpu")


def _devices(data: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """``{device_type: {"runs": ..., ...}}`` from a version-2 or version-1 file."""
    if data.get("format") == FORMAT_V1 and isinstance(data.get("runs"), dict):
        return {"cpu": {"runs": data["runs"], "written_at": data.get("written_at"), "git_commit": data.get("git_commit")}}
    devices = data.get("devices")
    if data.get("format") != FORMAT or not isinstance(devices, dict) or not all(
        isinstance(d, dict) and isinstance(d.get("runs"), dict) for d in devices.values()
    ):
        raise KitError(f"{path}: not a loss reference (expected JSON with \"format\": \"{FORMAT}\" and "
                       "\"devices\": {TYPE: {\"runs\": ...}})")
    return devices


def band(trace: list[dict[str, Any]], abs_tol: float = DEFAULT_ABS_TOL, rel_tol: float = DEFAULT_REL_TOL) -> list[dict[str, Any]]:
    """Reference steps for a loss trace: each point's loss as centre, tolerance ``max(abs, rel × |centre|)``."""
    return [
        {"step": int(p["step"]), "centre": float(p["loss"]),
         "tolerance": round(max(abs_tol, rel_tol * abs(float(p["loss"]))), 8)}
        for p in trace
    ]


def load_reference(path: str | Path, device_type: str | None = None) -> DeviceReference:
    """The runs of a reference file recorded on ``device_type`` (default: this machine's); a missing or
    malformed file is a KitError, a device with no entries is an empty mapping (every run "no reference")."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: reference file not found; write one with --write-reference {path}")
    data = read_json(path)
    if not isinstance(data, dict):
        raise KitError(f"{path}: not a loss reference (expected JSON with \"format\": \"{FORMAT}\")")
    devices = _devices(data, path)
    for device, block in devices.items():
        for name, entry in block["runs"].items():
            steps = entry.get("steps") if isinstance(entry, dict) else None
            if not isinstance(steps, list) or not all(
                isinstance(s, dict) and {"step", "centre", "tolerance"} <= s.keys() for s in steps
            ):
                raise KitError(f"{path}: devices.{device}.runs.{name}: 'steps' must be a list of {{step, centre, tolerance}}")
    device_type = device_type or current_device_type()
    return DeviceReference((devices.get(device_type) or {}).get("runs", {}), device_type, devices)


def check_trace(trace: list[dict[str, Any]], entry: dict[str, Any] | None) -> tuple[str, str]:
    """``("pass" | "fail" | "no reference", detail)`` for a run's loss trace against its reference entry."""
    if entry is None:
        return "no reference", "no reference entry for this run"
    if entry.get("missing"):
        return "no reference", str(entry["missing"])
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
    path: str | Path, runs: dict[str, dict[str, Any]], abs_tol: float = DEFAULT_ABS_TOL, rel_tol: float = DEFAULT_REL_TOL,
    device_type: str | None = None,
) -> int:
    """Write bands for ``runs`` (name → manifest with ``loss_trace``) into ``path`` under each run's machine kind
    (:func:`machine_kind` of its manifest's ``device``; the device type defaults to ``device_type``, else this
    machine's), merging; returns the count. Bands of a CPU held to a smaller instruction set say so (``held_by``)."""
    if abs_tol < 0 or rel_tol < 0:
        raise KitError("--tolerance-abs and --tolerance-rel must not be negative")
    path = Path(path)
    existing = read_json(path) if path.is_file() else None
    try:
        devices = _devices(existing, path) if isinstance(existing, dict) else {}
    except KitError:
        devices = {}
    default = device_type or current_device_type()
    commit = (git_info() or {}).get("commit")
    for name, manifest in runs.items():
        record = manifest.get("device") if isinstance(manifest.get("device"), dict) else {}
        block = devices.setdefault(machine_kind(record, default), {"runs": {}})
        block.update(written_at=utc_now(), git_commit=commit)
        if record.get("name"):
            block["device"] = record["name"]
        block.pop("held_by", None)
        if record.get("held_by"):
            block["held_by"] = record["held_by"]
        block["runs"][name] = {
            "notebook": (manifest.get("notebook") or {}).get("path"),
            "run_hash": manifest.get("hash"),
            "device": (manifest.get("device") or {}).get("name"),
            "steps": band(manifest.get("loss_trace") or [], abs_tol, rel_tol),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"format": FORMAT, "abs_tol": abs_tol, "rel_tol": rel_tol, "devices": devices})
    return len(runs)
