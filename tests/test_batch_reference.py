"""Loss reference bands: tolerance rule, pass/fail messages, file format checks, merge on write (no kernels)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.batch.reference import FORMAT, band, check_trace, load_reference, write_reference
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
    write_reference(ref, {"old": {"loss_trace": TRACE, "hash": "h1"}})
    count = write_reference(ref, {"new": {"loss_trace": TRACE[:1], "notebook": {"path": "nb.ipynb"}}}, 0.1, 0.0)
    assert count == 1
    runs = load_reference(ref)
    assert set(runs) == {"old", "new"} and runs["new"]["steps"] == [{"step": 1, "centre": 3.0, "tolerance": 0.1}]
    assert json.loads(ref.read_text())["format"] == FORMAT
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": FORMAT, "runs": {"x": {"steps": [{"step": 1}]}}}))
    with pytest.raises(KitError, match=r"bad\.json: runs\.x: 'steps' must be a list of \{step, centre, tolerance\}"):
        load_reference(bad)
    with pytest.raises(KitError, match=r"reference file not found; write one with --write-reference"):
        load_reference(tmp_path / "missing.json")
    bad.write_text("[]")
    with pytest.raises(KitError, match="not a loss reference"):
        load_reference(bad)
