"""``kit batch PLAN.yaml``: run notebooks headlessly from a plan, with manifests, a summary and loss bands."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kit.batch.plan import Plan

_EPILOG = """\
plan (YAML):
  defaults: {max_steps: 30}            # set in every run whose notebook defines it
  grid: {lora_r: [8, 16]}              # cartesian product over the runs that take it
  env: {HF_HUB_OFFLINE: "1"}           # extra environment for the kernels
  runs:
    - notebook: notebooks/01_alpaca_sft.ipynb
      name: alpaca
      parameters: {learning_rate: 2.0e-4}
      resources: {gpus: 1, cpus: 4}      # --backend ray/slurm: what its task asks for; gpus >= 2: accelerate launch
    - notebook: notebooks/04_evaluate.ipynb
      parameters: {adapter_dir: "{run:alpaca}"}   # alpaca's output_dir; runs after it

exit codes: 0 all completed, 1 a run failed or was skipped, 2 a plan error, 130 interrupted
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``batch`` command."""
    from kit.batch.reference import DEFAULT_ABS_TOL, DEFAULT_REL_TOL

    p = subparsers.add_parser(
        "batch",
        help="run notebooks headlessly from a YAML plan (sweeps, re-runs, reference checks)",
        description="Run the notebooks of a plan through papermill; record a manifest per run and a summary.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("plan", help="the plan YAML file")
    p.add_argument("--out", default=None, help="output folder (default: runs/<plan file stem>)")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs at a time: one GPU each, or a share of the CPU cores (default 1; ray/slurm: every ready run)")
    p.add_argument("--backend", choices=("local", "ray", "slurm"), default="local",
                   help="where runs execute: this machine (default), a Ray cluster, or Slurm through submitit")
    p.add_argument("--address", default=None, help="the Ray cluster to join (ray.init address; default RAY_ADDRESS or a local one)")
    p.add_argument("--resume", action="store_true", help="skip runs already completed with the same hash")
    p.add_argument("--dry-run", action="store_true", help="print the expanded plan and run nothing")
    p.add_argument("--check-reference", metavar="REF.json", help="fail runs whose loss trace leaves the reference band")
    p.add_argument("--write-reference", metavar="REF.json", help="write loss bands from this batch's completed runs")
    p.add_argument("--tolerance-abs", type=float, default=DEFAULT_ABS_TOL, help=f"band half-width floor (default {DEFAULT_ABS_TOL})")
    p.add_argument("--tolerance-rel", type=float, default=DEFAULT_REL_TOL, help=f"band half-width relative to the loss (default {DEFAULT_REL_TOL})")
    p.set_defaults(handler=_run)


def check_reference_target(path: str) -> None:
    """A :class:`KitError` unless ``--write-reference PATH`` names a JSON file that can be written."""
    from kit.errors import KitError

    target = Path(path).expanduser()
    if target.is_dir():
        raise KitError(f"--write-reference {path}: this is a folder; give the JSON file to write, e.g. {target / 'reference.json'}")
    if target.exists() and not os.access(target, os.W_OK):
        raise KitError(f"--write-reference {path}: this file is not writable; choose another path")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise KitError(f"--write-reference {path}: {parent} is a file, not a folder; choose another path")
            if not target.exists() and not os.access(parent, os.W_OK | os.X_OK):
                raise KitError(f"--write-reference {path}: the folder {parent} is not writable; choose another path")
            break


def describe_plan(plan: Plan, resume: bool = False) -> list[str]:
    """The expanded plan as text: run id, notebook, parameters and dependencies of each run."""
    from kit.batch.manifest import display_path
    from kit.batch.runner import completed_manifest
    from kit.runtime.redact import environment_secrets, redact, secret_values

    lines = [f"{plan.label}: {len(plan.runs)} runs → {plan.out_dir} (dry run: nothing is executed)"]
    for spec in plan.runs:
        note = "  (completed earlier: --resume skips it)" if resume and completed_manifest(spec) else ""
        lines.append(f"{spec.run_id}  {display_path(spec.notebook)}{note}")
        shown = redact(spec.parameters, secret_values(spec.parameters) | environment_secrets(plan.env))
        params = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in shown.items())
        lines.append(f"    parameters: {params or '(notebook defaults)'}")
        after = ", ".join(plan.run(name).run_id for name in spec.dependencies)
        lines.append(f"    after: {after or '-'}")
        if spec.resources:
            lines.append("    resources: " + ", ".join(f"{k}={v}" for k, v in spec.resources.items()))
    return lines


def _run(args: argparse.Namespace) -> int:
    from kit.batch.plan import load_plan
    from kit.batch.reference import load_reference, write_reference
    from kit.batch.report import gain_lines
    from kit.batch.runner import BatchRunner
    from kit.errors import KitError

    if args.jobs is not None and args.jobs < 1:
        raise KitError(f"--jobs must be at least 1, got {args.jobs}")
    if not (math.isfinite(args.tolerance_abs) and math.isfinite(args.tolerance_rel)):
        raise KitError("--tolerance-abs and --tolerance-rel must be finite numbers (nan would let any loss pass)")
    if args.tolerance_abs < 0 or args.tolerance_rel < 0:
        raise KitError("--tolerance-abs and --tolerance-rel must not be negative")
    if args.write_reference:
        check_reference_target(args.write_reference)  # before the batch runs, not after
    plan = load_plan(args.plan, args.out)
    if args.dry_run:
        print("\n".join(describe_plan(plan, args.resume)))
        return 0
    reference = load_reference(args.check_reference) if args.check_reference else None
    from kit.batch.backends import get_backend

    backend = get_backend(args.backend, args.address)
    try:
        jobs = args.jobs or (1 if args.backend == "local" else 0)
        result = BatchRunner(plan, jobs=jobs, resume=args.resume, reference=reference, backend=backend).run()
    finally:
        backend.close()
    if args.write_reference:
        completed = {m["name"]: m for m in result.manifests if m["status"] == "completed"}
        count = write_reference(args.write_reference, completed, args.tolerance_abs, args.tolerance_rel)
        print(f"reference: {count} run{'s' if count != 1 else ''} written to {args.write_reference}", flush=True)
    gains = gain_lines(result.manifests)
    if gains:
        print("held-out evaluation, before -> after training:", *(f"  {line}" for line in gains), sep="\n", flush=True)
    return result.exit_code
