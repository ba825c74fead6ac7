"""The GPU proof's wiring, checked on CPU: train_speed.py runs its small case end to end, and gpu_check.sh
--dry-run validates every step's command (probe, shapes, test_gpu collection, the GPU plan, both speed runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_train_speed_smoke_compares_kit_and_plain(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_speed.py"), "--smoke",
                           "--model", str(tiny_model_dir), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"kit_lora16", "plain_lora16"}
    for result in report["results"].values():
        assert result["tokens_per_s"] > 0 and result["tokens"] == 2 * 64 * 2  # batch x seq len x measured steps
        assert result["measured_steps"] == 2 and result["warmup_steps"] == 1
        assert result["memory_kind"] == "rss" and result["peak_rss_mb"] > 0
        assert result["mfu_formula"].startswith("tokens/s x (6 x ") and result["mfu"] > 0
    ratio = report["ratios"]["lora16"]
    kit, plain = report["results"]["kit_lora16"], report["results"]["plain_lora16"]
    assert ratio["tokens_per_s_ratio"] == round(kit["tokens_per_s"] / plain["tokens_per_s"], 3)
    assert ratio["peak_memory_ratio"] == round(kit["peak_memory_mb"] / plain["peak_memory_mb"], 3)


def test_gpu_check_dry_run_checks_every_step(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env={**os.environ, "OUT": str(out)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] is True
    assert [s["step"] for s in summary["steps"]] == ["probe", "shapes", "test_gpu", "plan", "speed_0.5b", "speed_1.5b"]
    assert all(s["status"] == "ok" for s in summary["steps"]), summary
    probe = json.loads((out / "probe.json").read_text())
    assert probe["transformers"] and probe["trl"] and probe["unsloth"]
    assert "tests/test_gpu.py" in (out / "logs" / "test_gpu.log").read_text()
    assert "6 runs" in (out / "logs" / "plan.log").read_text()
    speed = json.loads((out / "logs" / "speed_1.5b.log").read_text())
    assert speed["dry_run"] and speed["config"]["seq_len"] == 1024
