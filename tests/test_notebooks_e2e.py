"""Every notebook, executed headless through `kit batch` on the tiny model and data/, in plan order.

One batch for the whole module (about two minutes on 2 cores); the tests then read what it left behind.
On a GPU machine the same tests hold: the reference is per device type (a CUDA run without a CUDA entry reads
"no reference for cuda", not a failure), a GGUF export is checked for its Modelfile, and re-runs must agree
to 1e-3 rather than bit for bit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from kit.cli import main as kit_main

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "notebooks" / "batches" / "tiny.yaml"
REFERENCE = ROOT / "notebooks" / "batches" / "tiny.reference.json"
TRAINING_RUNS = ("alpaca", "medical", "dpo")

pytestmark = pytest.mark.notebooks


def _plan_for(tiny_model_dir: Path, tmp: Path, only: tuple[str, ...] | None = None) -> Path:
    """The committed plan with absolute notebook paths and the test's own tiny model."""
    plan = yaml.safe_load(PLAN.read_text(encoding="utf-8"))
    plan["defaults"]["model_name"] = str(tiny_model_dir)
    for run in plan["runs"]:
        run["notebook"] = str((PLAN.parent / run["notebook"]).resolve())
    if only:
        plan["runs"] = [r for r in plan["runs"] if r["name"] in only]
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    return path


def _run_dir(out: Path, name: str) -> Path:
    found = sorted(p for p in out.glob(f"*-{name}-*") if p.is_dir())
    assert len(found) == 1, f"expected one run folder for {name} in {out}: {found}"
    return found[0]


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def batch(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    tmp = tmp_path_factory.mktemp("batch")
    out = tmp / "out"
    code = kit_main(["batch", str(_plan_for(tiny_model_dir, tmp)), "--out", str(out),
                     "--check-reference", str(REFERENCE)])
    return out, code


def test_batch_completed(batch: tuple[Path, int]) -> None:
    out, code = batch
    statuses = {p.name: _load(p / "manifest.json")["status"] for p in out.iterdir() if (p / "manifest.json").exists()}
    assert code == 0, statuses
    assert len(statuses) == 5 and set(statuses.values()) == {"completed"}
    summary = (out / "summary.csv").read_text(encoding="utf-8").strip().splitlines()
    assert len(summary) == 1 + 5


@pytest.mark.parametrize("name", TRAINING_RUNS)
def test_loss_is_finite_and_falls(batch: tuple[Path, int], name: str) -> None:
    metrics = _load(_run_dir(batch[0], name) / "metrics.json")
    losses = [p["loss"] for p in metrics["loss_trace"]]
    assert len(losses) >= 10 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses


def test_grpo_ran_with_preflight(batch: tuple[Path, int]) -> None:
    run = _run_dir(batch[0], "grpo")
    metrics = _load(run / "metrics.json")
    assert metrics["steps"] == 8 and all(math.isfinite(p["loss"]) for p in metrics["loss_trace"])
    assert set(metrics["eval"]) >= {"before", "warmup", "after", "gain", "gain_over_warmup"}
    assert metrics["grpo"]["steps"] == 8 and metrics["grpo"]["audit"] in ("learned", "format_only", "flat")
    executed = (run / "03_grpo_reasoning.ipynb").read_text(encoding="utf-8")
    assert "preflight" in executed.lower() and "mean" in executed


@pytest.mark.parametrize("name", TRAINING_RUNS)
def test_adapter_reloads(batch: tuple[Path, int], name: str) -> None:
    from safetensors.torch import load_file

    from kit.training.model import load_model

    output = _run_dir(batch[0], name) / "output"
    saved = load_file(str(output / "adapter_model.safetensors"))
    model, tokenizer = load_model(str(output), max_seq_length=128, load_in_4bit=False, dtype="float32")
    assert type(model).__name__.startswith("Peft")
    state = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(state) == len(saved)
    for key, tensor in saved.items():
        match = [v for k, v in state.items() if k.replace(".default", "").endswith(key.split("base_model.model.")[-1])]
        assert match and match[0].float().allclose(tensor.float()), key
    text = "你好，世界"
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text


def test_evaluation_consumed_adapters(batch: tuple[Path, int]) -> None:
    run = _run_dir(batch[0], "evaluate")
    metrics = _load(run / "metrics.json")["metrics"]
    for name in TRAINING_RUNS:
        assert any(key.startswith(f"{name}_") for key in metrics), metrics
    assert metrics["merge_max_abs_diff"] < 0.1  # 16-bit rounding of the merged weights
    assert metrics["merge_top_token_agreement"] >= 0.9
    assert (run / "output" / "merged_16bit" / "config.json").is_file()
    import torch

    if not torch.cuda.is_available():
        assert metrics["gguf_exported"] == 0  # no GPU here: skipped with a reason, never faked
    elif metrics["gguf_exported"]:  # a GPU machine with llama.cpp: the Ollama Modelfile sits next to the GGUF
        assert list((run / "output").rglob("Modelfile")), "GGUF exported without a Modelfile"


def test_manifest_records_provenance(batch: tuple[Path, int]) -> None:
    manifest = _load(_run_dir(batch[0], "medical") / "manifest.json")
    assert manifest["seed"] == 3407
    paths = [f["path"] for f in manifest["data_files"]]
    assert any("IM_内科" in p for p in paths) and all(len(f["sha256"]) == 64 for f in manifest["data_files"])


def test_same_seed_gives_identical_loss_trace(batch: tuple[Path, int], tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    assert kit_main(["batch", str(_plan_for(tiny_model_dir, tmp_path, only=("alpaca",))), "--out", str(out)]) == 0
    first = _load(_run_dir(batch[0], "alpaca") / "metrics.json")["loss_trace"]
    second = _load(_run_dir(out, "alpaca") / "metrics.json")["loss_trace"]
    import torch

    if torch.cuda.is_available():  # CUDA kernels (atomics in backward) may differ in the last bits between runs
        assert [p["step"] for p in first] == [p["step"] for p in second]
        assert [p["loss"] for p in second] == pytest.approx([p["loss"] for p in first], rel=1e-3, abs=1e-4)
    else:
        assert first == second


# What each executed notebook may print on stderr: only what a user should act on. Measured on the tiny plan:
# 03 warns that one warm-up example is longer than the tiny model's 256 tokens, and its strict pre-flight
# (turned off in the tiny plan) says once that no reward varies.
STDERR_LINES = {"alpaca": 0, "medical": 0, "grpo": 4, "dpo": 0, "evaluate": 0}


@pytest.mark.parametrize("name", list(STDERR_LINES))
def test_executed_notebooks_are_quiet(batch: tuple[Path, int], name: str) -> None:
    from kit.notebooks.outputs import output_stats, problems

    run = _run_dir(batch[0], name)
    stats = output_stats(next(run.glob("*.ipynb")))
    assert stats.widgets == 0 and stats.errors == 0
    assert stats.stderr_lines <= STDERR_LINES[name], stats.stderr_by_cell
    assert stats.images >= 1  # every plot is inline in the executed notebook
    # kit.notebooks.outputs.LIMITS: no cell floods the page, no per-step dicts, no answer cut with "...".
    assert problems(stats) == []


# The training notebooks show held-out answers in full (kit.evaluation.display) and print a verdict next to every gain.
READABLE = {"alpaca": ("better", "unclear", "worse"), "medical": ("更好", "不确定", "更差"),
            "dpo": ("better", "unclear", "worse")}


@pytest.mark.parametrize("name", list(READABLE))
def test_executed_notebooks_show_answers_and_verdicts(batch: tuple[Path, int], name: str) -> None:
    run = _run_dir(batch[0], name)
    nb = json.loads(next(run.glob("*.ipynb")).read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    block = _load(run / "metrics.json")["eval"]
    assert " │ " in text  # kit.evaluation.display's answers
    lines = [ln for ln in text.splitlines() if any(f"{m}: " in ln and "->" in ln for m in block["gain"])]
    assert len(lines) >= len(block["gain"])  # every gain printed ...
    assert all(any(v in ln for v in READABLE[name]) for ln in lines)  # ... with its verdict on the same line
    if name == "dpo":
        assert "implicit-reward accuracy" in text and "held-out pairs (n=16)" in text
        assert {"norm_accuracy", "norm_margin"} <= set(block["gain"])
        assert len(block["implicit"]["reward_accuracy_ci95"]) == 2


@pytest.mark.parametrize("name", ["alpaca", "medical", "grpo", "dpo"])
def test_every_training_run_writes_a_held_out_eval_block(batch: tuple[Path, int], name: str) -> None:
    block = _load(_run_dir(batch[0], name) / "metrics.json")["eval"]
    assert block["split"] == "holdout" and block["n"] >= 8
    for metric, gain in block["gain"].items():
        lo, hi = gain["ci95"]
        assert lo <= gain["value"] <= hi, metric
        assert math.isclose(gain["value"], block["after"][metric] - block["before"][metric], abs_tol=1e-3)
