"""Checks of ``gpu_check.sh --rehearse`` (a CPU machine dressed as the GPU one): which failures are the expected
end of the road (the first CUDA allocation) and which would also stop the real run.

  python benchmarks/gpu_rehearsal.py plan-file notebooks/batches/gpu.yaml OUT.yaml [N]  # the plan's first N runs
  python benchmarks/gpu_rehearsal.py check-plan PLAN_OUT     # install cell said "nothing to do"; stopped at CUDA
  python benchmarks/gpu_rehearsal.py check-speed SPEED.json  # each path measured, skipped, or stopped at CUDA
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

# What a failure looks like when the code got as far as it can without a GPU.
_CUDA = re.compile(r"cuda|nvidia|pin(ned)?[ _]memory|no (nvidia |cuda )?driver|gpu|accelerator|bitsandbytes 4-bit",
                   re.IGNORECASE)
NOTHING_TO_DO = "nothing to do"


def plan_file(src: Path, dest: Path, runs: int = 1) -> Path:
    """A copy of plan ``src`` with its first ``runs`` runs, notebook paths made absolute (it is written elsewhere)."""
    import yaml

    plan = yaml.safe_load(src.read_text(encoding="utf-8"))
    plan["runs"] = plan["runs"][:runs]
    for run in plan["runs"]:
        run["notebook"] = str((src.parent / run["notebook"]).resolve())
    dest.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return dest


def _text(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for out in outputs:
        text = out.get("text", "")
        parts.append("".join(text) if isinstance(text, list) else text)
        if out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return "".join(parts)


def check_plan(plan_out: Path) -> list[str]:
    """Problems with the executed notebooks under ``plan_out`` (empty: all reached the GPU's door)."""
    notebooks = sorted(plan_out.rglob("*.ipynb"))
    if not notebooks:
        return [f"{plan_out}: no executed notebook (kit batch did not start a kernel)"]
    problems = []
    for path in notebooks:
        cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c.get("cell_type") == "code"]
        install = next((c for c in cells if "".join(c.get("source", "")).startswith("# Install the kit.")), None)
        said = _text(install.get("outputs", [])) if install else ""
        if NOTHING_TO_DO not in said:
            problems.append(f"{path.name}: the install cell did not say '{NOTHING_TO_DO}': {said.strip()[-300:]!r}")
            continue
        errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            error = f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
            if not _CUDA.search(error):
                problems.append(f"{path.name}: stopped before CUDA work: {error[:300]}")
            else:
                print(f"[rehearse] {path.name}: install cell '{NOTHING_TO_DO}'; stopped at the GPU: {error[:160]}")
        else:
            print(f"[rehearse] {path.name}: install cell '{NOTHING_TO_DO}'; ran to the end")
    return problems


def check_speed(path: Path) -> list[str]:
    """Problems in a train_speed.py JSON (empty: every path measured, skipped for want of CUDA, or stopped at it)."""
    if not path.is_file():
        return [f"{path}: not written"]
    report = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for name in ("processor", ):
        if name not in report.get("host", {}):
            problems.append(f"{path.name}: host.{name} missing")
    if not report.get("versions", {}).get("torch"):
        problems.append(f"{path.name}: versions missing")
    for name, result in report.get("results", {}).items():
        why = result.get("error") or result.get("skipped")
        if why and not _CUDA.search(why):
            problems.append(f"{path.name}: {name}: {why[:300]}")
        else:
            print(f"[rehearse] {name}: {'measured' if not why else why[:160]}")
    if not report.get("results"):
        problems.append(f"{path.name}: no path ran")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "plan-file":
        plan_file(Path(argv[1]), Path(argv[2]), int(argv[3]) if len(argv) > 3 else 1)
        return 0
    if len(argv) == 2 and argv[0] in ("check-plan", "check-speed"):
        problems = (check_plan if argv[0] == "check-plan" else check_speed)(Path(argv[1]))
        for line in problems:
            print(f"[rehearse] WOULD FAIL: {line}")
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
