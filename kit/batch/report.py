"""Compare a batch's runs at a glance: progress lines, ``summary.csv``/``summary.md`` and ``loss_curves.png``.

The summary has one row per run: run id, status, the parameters that differ between runs (as written in
the plan), final loss, the notebook's final metrics (``metrics`` keys, nested ones flattened with dots),
wall time, peak memory, the reference check when one was asked for, and a note (error or reason).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from kit.batch.manifest import error_text

_MISSING = object()


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def progress_line(position: int, total: int, manifest: dict[str, Any]) -> str:
    """``[2/5] 02-medical_sft-1a2b3c4d  completed  41.2 s  loss 7.61→6.02  peak 812 MiB`` (no bars, no ``\\r``)."""
    parts = [f"[{position}/{total}] {manifest['run_id']}", manifest["status"] + (" (resumed)" if manifest.get("resumed") else "")]
    if manifest.get("wall_s") is not None:
        parts.append(f"{manifest['wall_s']:.1f} s")
    trace = manifest.get("loss_trace") or []
    if trace:
        parts.append(f"loss {_number(trace[0]['loss'], 3)}→{_number(trace[-1]['loss'], 3)}")
    if manifest.get("peak_memory_mb") is not None:
        parts.append(f"peak {manifest['peak_memory_mb']:.0f} MiB")
    reference = manifest.get("reference") or {}
    if reference.get("status") == "pass":
        parts.append("reference ok")
    elif reference.get("status") == "no reference":
        parts.append("no reference")
    if manifest["status"] != "completed":
        note = error_text(manifest.get("error")) or manifest.get("reason") or ""
        if note:
            parts.append(note)
    return "  ".join(parts)


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, into)
    elif isinstance(value, list):
        into[prefix] = json.dumps(value, ensure_ascii=False, default=str)
    else:
        into[prefix] = value


def differing_parameters(manifests: list[dict[str, Any]]) -> list[str]:
    """Parameter names (as written in the plan) whose values are not the same in every run."""
    keys: list[str] = []
    for manifest in manifests:
        for key in manifest.get("parameters_written") or {}:
            if key not in keys:
                keys.append(key)
    if len(manifests) < 2:
        return []
    return [
        key for key in keys
        if len({json.dumps((m.get("parameters_written") or {}).get(key, "<unset>"), sort_keys=True, default=str)
                for m in manifests}) > 1
    ]


def summary_rows(manifests: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and one row per run, ready for CSV or Markdown."""
    params = differing_parameters(manifests)
    flat = []
    metric_keys: list[str] = []
    for manifest in manifests:
        values: dict[str, Any] = {}
        _flatten("", manifest.get("metrics") or {}, values)
        flat.append(values)
        metric_keys += [k for k in values if k not in metric_keys]
    metric_columns = {k: (f"metric.{k}" if k in params or k in ("run_id", "status") else k) for k in metric_keys}
    with_reference = any(m.get("reference") for m in manifests)
    columns = ["run_id", "status", *params, "final_loss", *metric_columns.values(), "wall_s", "peak_memory_mb"]
    columns += ["reference"] if with_reference else []
    columns.append("note")
    rows = []
    for manifest, values in zip(manifests, flat):
        row: dict[str, Any] = {"run_id": manifest["run_id"], "status": manifest["status"]}
        for key in params:
            row[key] = (manifest.get("parameters_written") or {}).get(key, "")
        row["final_loss"] = manifest.get("final_loss")
        for key, column in metric_columns.items():
            row[column] = values.get(key)
        row["wall_s"] = None if manifest.get("wall_s") is None else round(manifest["wall_s"], 1)
        row["peak_memory_mb"] = manifest.get("peak_memory_mb")
        if with_reference:
            reference = manifest.get("reference") or {}
            row["reference"] = reference.get("status", "")
        note = error_text(manifest.get("error")) or manifest.get("reason") or ""
        if manifest.get("reference", {}) and manifest["reference"].get("status") == "fail":
            note = manifest["reference"]["detail"]
        if manifest.get("resumed"):
            note = ("resumed: completed in an earlier batch; " + note).rstrip("; ")
        row["note"] = note
        rows.append(row)
    return columns, rows


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return _number(value).replace("|", "\\|").replace("\n", " ")


def write_summary(out_dir: Path, manifests: list[dict[str, Any]], header: list[str]) -> tuple[Path, Path]:
    """Write ``summary.csv`` and ``summary.md`` (with ``header`` lines above the table); return their paths."""
    columns, rows = summary_rows(manifests)
    csv_path = out_dir / "summary.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v if not isinstance(v, (dict, list)) else json.dumps(v)) for k, v in row.items()})
    # The Markdown stays readable: one row per run with the common columns, then each run's own metrics
    # (notebooks report different ones); summary.csv keeps every column side by side for spreadsheets.
    params = differing_parameters(manifests)
    core = [c for c in columns if c in ("run_id", "status", *params, "final_loss", "wall_s", "peak_memory_mb",
                                        "reference", "note")]
    lines = [*header, "", "| " + " | ".join(core) + " |", "|" + "---|" * len(core)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in core) + " |" for row in rows]
    if (out_dir / "loss_curves.png").exists():
        lines += ["", "![loss curves](loss_curves.png)"]
    for row in rows:
        metrics = [(c, row.get(c)) for c in columns if c not in core and row.get(c) not in (None, "")]
        if metrics:
            lines += ["", f"### {row['run_id']}", "", "| metric | value |", "|---|---|"]
            lines += [f"| {_cell(name)} | {_cell(value)} |" for name, value in metrics]
    md_path = out_dir / "summary.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, md_path


def training_kind(manifest: dict[str, Any]) -> str:
    """``SFT``, ``DPO``, ``GRPO`` or ``other`` from the run's notebook: losses of different kinds do not compare."""
    stem = Path(str(manifest.get("notebook") or "")).stem.lower()
    for key, kind in (("grpo", "GRPO"), ("dpo", "DPO"), ("sft", "SFT")):
        if key in stem:
            return kind
    return "other"


def plot_loss_curves(path: Path, manifests: list[dict[str, Any]], references: dict[str, Any] | None = None) -> Path:
    """Draw every run's loss trace into ``path`` (Agg), one panel per training kind (SFT, DPO and GRPO losses are
    not on one scale), reference bands shaded when given; run names in Chinese render with the CJK font."""
    from matplotlib.ticker import MaxNLocator

    from kit.plots import new_figure

    kinds: dict[str, list[dict[str, Any]]] = {}
    for manifest in manifests:
        if manifest.get("loss_trace"):
            kinds.setdefault(training_kind(manifest), []).append(manifest)
    figure = new_figure(max(6.0, 4.8 * len(kinds)), 4.2)
    figure.set_dpi(110)
    axes = figure.subplots(1, max(1, len(kinds)), squeeze=False)[0]
    for ax, (kind, runs) in zip(axes, kinds.items()):
        for manifest in runs:
            trace = manifest["loss_trace"]
            steps = [p["step"] for p in trace]
            line = ax.plot(steps, [p["loss"] for p in trace], marker="." if len(trace) < 40 else None,
                           label=f"{manifest['run_id']} ({manifest['status']})")[0]
            entry = (references or {}).get(manifest.get("name"))
            if entry and entry.get("steps"):
                ref_steps = [s["step"] for s in entry["steps"]]
                low = [s["centre"] - s["tolerance"] for s in entry["steps"]]
                high = [s["centre"] + s["tolerance"] for s in entry["steps"]]
                ax.fill_between(ref_steps, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{kind} training loss")
        ax.set_title(f"{kind} loss" + (" (shaded: reference band)" if references else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if not kinds:
        axes[0].text(0.5, 0.5, "no loss traces recorded", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
    figure.savefig(path)
    return path


def gain_lines(manifests: list[dict[str, Any]]) -> list[str]:
    """One line per completed run with an ``eval`` block in its metrics.json: what changed on held-out data.

    ``01-alpaca: rouge_l 0.3688 -> 0.4229 (+0.0541, ci95 +0.0100..+0.1000, better), bleu ... (n=48)``;
    *better* when the 95% interval of the gain is above 0, *worse* when it is below 0, else *unclear*.
    """
    from kit.evaluation.block import verdict

    lines = []
    for manifest in manifests:
        if manifest.get("status") != "completed" or not manifest.get("output_dir"):
            continue
        try:
            block = json.loads((Path(manifest["output_dir"]) / "metrics.json").read_text(encoding="utf-8")).get("eval")
        except (OSError, ValueError):
            continue
        if not isinstance(block, dict) or not block.get("gain"):
            continue
        parts = []
        for metric, gain in block["gain"].items():
            if gain.get("value") is None:
                continue
            lo, hi = gain["ci95"]
            parts.append(f"{metric} {block['before'][metric]:.4f} -> {block['after'][metric]:.4f} "
                         f"({gain['value']:+.4f}, ci95 {lo:+.4f}..{hi:+.4f}, {verdict(gain)})")
        lines.append(f"{manifest['index']:02d}-{manifest['name']}: {'; '.join(parts)} (n={block.get('n')})")
    return lines
