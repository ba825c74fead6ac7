"""Loss reference bands: tolerance rule, pass/fail messages, file format checks, merge on write, per-device
entries (a CPU reference never judges a CUDA run) and the version-1 layout read as CPU (no kernels)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.batch.reference import FORMAT, FORMAT_V1, band, check_trace, load_reference, write_reference
from kit.errors import KitError

TRACE = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 1.0}, {"step": 3, "loss": 0.5}]


def test_band_tolerance_is_max_of_abs_and_rel() -> None:
    steps = band(TRACE, abs_tol=0.02, rel_tol=0.01)
    assert [s["tolerance"] for s in steps] == [pytest.approx(0.03), pytest.approx(0.02), pytest.approx(0.02)]
    assert [s["centre"] for s in steps] == [3.0, 1.0, 0.5]


def test_inside_band_passes_outside_fails_naming_the_step() -> None:
    entry = {"steps": band(TRACE)}
    assert check_trace([{"step": 1, "loss": 3.029}, {"step": 2, "loss": 0.981}, {"step": 3, "loss": 0.5}], entry)[0] == "pass"
    status, detail = check_trace([{"step": 1, "loss": 3.0}, {"step": 2, "loss": 1.05}, {"step": 3, "loss": 0.5}], entry)
    assert status == "fail"
    assert detail == "step 2: loss 1.05 is outside the reference band 1 ± 0.02 [0.98, 1.02]"
    assert check_trace([{**p, "loss": float("nan")} for p in TRACE], entry)[0] == "fail"


def test_step_mismatch_fails_and_missing_entry_is_not_a_failure() -> None:
    entry = {"steps": band(TRACE)}
    assert check_trace(TRACE[:2], entry) == ("fail", "loss trace has 2 points, the reference has 3")
    shifted = [{"step": p["step"] * 10, "loss": p["loss"]} for p in TRACE]
    assert check_trace(shifted, entry) == ("fail", "logged step 10 where the reference has step 1")
    assert check_trace(TRACE, None)[0] == "no reference"


def test_write_merges_and_load_validates(tmp_path: Path) -> None:
    ref = tmp_path / "ref.json"
    write_reference(ref, {"old": {"loss_trace": TRACE, "hash": "h1"}}, device_type="cpu")
    count = write_reference(ref, {"new": {"loss_trace": TRACE[:1], "notebook": {"path": "nb.ipynb"}}}, 0.1, 0.0,
                            device_type="cpu")
    assert count == 1
    runs = load_reference(ref, "cpu")
    assert set(runs) == {"old", "new"} and runs["new"]["steps"] == [{"step": 1, "centre": 3.0, "tolerance": 0.1}]
    assert json.loads(ref.read_text())["format"] == FORMAT
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": FORMAT, "devices": {"cpu": {"runs": {"x": {"steps": [{"step": 1}]}}}}}))
    with pytest.raises(KitError, match=r"bad\.json: devices\.cpu\.runs\.x: 'steps' must be a list of \{step, centre, tolerance\}"):
        load_reference(bad, "cpu")
    with pytest.raises(KitError, match=r"reference file not found; write one with --write-reference"):
        load_reference(tmp_path / "missing.json")
    bad.write_text("[]")
    with pytest.raises(KitError, match="not a loss reference"):
        load_reference(bad)


def test_references_are_kept_per_device_type(tmp_path: Path) -> None:
    ref = tmp_path / "ref.json"
    # Each run lands under its manifest's device type; writing on CUDA keeps the CPU entries.
    write_reference(ref, {"a": {"loss_trace": TRACE, "device": {"type": "cpu", "name": "Xeon"}}})
    write_reference(ref, {"a": {"loss_trace": [{**p, "loss": p["loss"] / 2} for p in TRACE],
                                "device": {"type": "cuda"}}})
    devices = json.loads(ref.read_text())["devices"]
    assert set(devices) == {"cpu", "cuda"} and devices["cpu"]["runs"]["a"]["device"] == "Xeon"
    cpu, cuda = load_reference(ref, "cpu"), load_reference(ref, "cuda")
    assert cpu["a"]["steps"][0]["centre"] == 3.0 and cuda["a"]["steps"][0]["centre"] == 1.5
    assert check_trace(TRACE, cpu.get("a"))[0] == "pass"
    assert check_trace(TRACE, cuda.get("a"))[0] == "fail"  # the CUDA band, not the CPU one
    # A device with no entry: reported, never failed.
    assert check_trace(TRACE, load_reference(ref, "xpu").get("a")) == ("no reference", "no reference for xpu")
    assert check_trace(TRACE, load_reference(ref, "cuda").get("other")) == ("no reference", "no reference for cuda")


def test_version_1_file_reads_as_cpu(tmp_path: Path) -> None:
    ref = tmp_path / "v1.json"
    ref.write_text(json.dumps({"format": FORMAT_V1, "runs": {"a": {"steps": band(TRACE)}}}))
    assert set(load_reference(ref, "cpu")) == {"a"} and not load_reference(ref, "cuda")
    write_reference(ref, {"b": {"loss_trace": TRACE, "device": {"type": "cuda"}}})
    data = json.loads(ref.read_text())
    assert data["format"] == FORMAT and set(data["devices"]["cpu"]["runs"]) == {"a"} and set(data["devices"]["cuda"]["runs"]) == {"b"}


def test_committed_references_are_per_machine_kind() -> None:
    """The committed bands are keyed by machine kind (cpu/<capability>/<dtype>); every kind holds every run of
    its plan, bands recorded on a CPU held to AVX2 say so, and a kind never recorded is "no reference"."""
    from kit.paths import repo_root

    for plan, runs in (("tiny", {"alpaca", "medical", "grpo", "dpo", "evaluate"}),
                       ("smollm2", {"alpaca", "medical", "grpo", "dpo"})):
        ref = repo_root() / "notebooks" / "batches" / f"{plan}.reference.json"
        data = json.loads(ref.read_text(encoding="utf-8"))
        assert data["format"] == FORMAT and data["devices"], plan
        by_capability: dict[str, set[str]] = {}
        for kind, block in data["devices"].items():
            assert kind.startswith("cpu/") and kind.count("/") == 2, (plan, kind)
            by_capability.setdefault(kind.split("/")[1], set()).update(block["runs"])
            if kind.startswith("cpu/avx2/") and "held_by" in block:
                assert block["held_by"].get("ATEN_CPU_CAPABILITY") == "avx2"
        # 05 loads its models in float32 for the parity gate, so its band may sit under another dtype.
        assert all(runs <= found for found in by_capability.values()), (plan, by_capability)
        loaded = load_reference(ref, "cpu")
        gpu = {"device": {"type": "cuda", "name": "NVIDIA H100", "dtype": "bfloat16"}}
        assert check_trace(TRACE, loaded.entry("alpaca", gpu)) == ("no reference", "no reference for cuda/NVIDIA H100/bfloat16")
