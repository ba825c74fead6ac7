"""``kit batch`` plans: safe YAML, grid expansion, validation messages, run references and ids (no kernels)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_batch_helpers import PARAMETERS, write_notebook, write_plan

from kit.batch.plan import execution_order, load_plan, type_problem
from kit.cli import main
from kit.errors import KitError


@pytest.fixture()
def nb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # plans are named as a user types them: plan.yaml
    return write_notebook(tmp_path / "nb" / "dummy.ipynb")


def _plan(tmp_path: Path, data: dict, name: str = "plan.yaml") -> Path:
    write_plan(tmp_path / name, data)
    return Path(name)


def test_safe_load_rejects_python_tags(tmp_path: Path, nb: Path) -> None:
    path = Path("evil.yaml")
    path.write_text("runs:\n  - notebook: nb/dummy.ipynb\n    parameters: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(KitError, match=r"evil\.yaml: not a valid plan .*!!python/object are not allowed"):
        load_plan(path, tmp_path / "out")


def test_plan_shape_errors(tmp_path: Path, nb: Path) -> None:
    with pytest.raises(KitError, match=r"plan\.yaml: unknown top-level key\(s\) rnus"):
        load_plan(_plan(tmp_path, {"rnus": []}))
    with pytest.raises(KitError, match=r"'runs' must be a non-empty list"):
        load_plan(_plan(tmp_path, {"runs": []}))
    with pytest.raises(KitError, match=r"runs\[0\]: unknown key\(s\) parameter; allowed"):
        load_plan(_plan(tmp_path, {"runs": [{"notebook": "nb/dummy.ipynb", "parameter": {}}]}))


def test_grid_expansion_names_ids_and_output_dir(tmp_path: Path, nb: Path) -> None:
    plan = load_plan(
        _plan(tmp_path, {
            "defaults": {"steps": 3},
            "grid": {"learning_rate": [0.1, 0.2], "seed": [1, 2]},
            "runs": [{"notebook": "nb/dummy.ipynb", "name": "sft", "parameters": {"tag": "a"}}],
        }),
        tmp_path / "out",
    )
    names = [s.name for s in plan.runs]
    assert names == [
        "sft-learning_rate=0.1-seed=1", "sft-learning_rate=0.1-seed=2",
        "sft-learning_rate=0.2-seed=1", "sft-learning_rate=0.2-seed=2",
    ]
    assert plan.runs[3].written == {"steps": 3, "learning_rate": 0.2, "seed": 2, "tag": "a"}
    for index, spec in enumerate(plan.runs, start=1):
        assert re.fullmatch(rf"0{index}-{re.escape(spec.name)}-[0-9a-f]{{8}}", spec.run_id)
        assert spec.run_dir == (tmp_path / "out" / spec.run_id).resolve()
        assert spec.parameters["output_dir"] == str(spec.run_dir / "output")  # injected, absolute
        assert "output_dir" not in spec.written
    assert len({s.hash for s in plan.runs}) == 4


def test_hash_depends_on_notebook_parameters_and_dependencies(tmp_path: Path, nb: Path) -> None:
    data = {"runs": [
        {"notebook": "nb/dummy.ipynb", "name": "train", "parameters": {"steps": 3}},
        {"notebook": "nb/dummy.ipynb", "name": "eval", "parameters": {"upstream": "{run:train}"}},
    ]}
    first = load_plan(_plan(tmp_path, data), tmp_path / "out")
    again = load_plan(_plan(tmp_path, data), tmp_path / "elsewhere")
    assert [s.hash for s in first.runs] == [s.hash for s in again.runs]  # output folder is not part of it
    data["runs"][0]["parameters"]["steps"] = 4
    changed = load_plan(_plan(tmp_path, data), tmp_path / "out")
    assert changed.runs[0].hash != first.runs[0].hash
    assert changed.runs[1].hash != first.runs[1].hash  # eval's own parameters are equal: upstream changed
    nb.write_text(nb.read_text().replace("loss", "loss "), encoding="utf-8")
    edited = load_plan(_plan(tmp_path, data), tmp_path / "out")
    assert edited.runs[0].hash != changed.runs[0].hash


def test_unknown_notebook(tmp_path: Path, nb: Path) -> None:
    path = _plan(tmp_path, {"runs": [{"notebook": "missing.ipynb"}]})
    with pytest.raises(KitError, match=r"plan\.yaml: runs\[0\]: notebook 'missing\.ipynb' not found"):
        load_plan(path)


def test_notebook_resolves_against_repo_root(tmp_path: Path, nb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_ROOT", str(tmp_path))
    sub = tmp_path / "plans"
    sub.mkdir()
    plan = load_plan(write_plan(sub / "p.yaml", {"runs": [{"notebook": "nb/dummy.ipynb"}]}), tmp_path / "out")
    assert plan.runs[0].notebook == nb.resolve()


def test_unknown_parameter_names_plan_entry_and_known(tmp_path: Path, nb: Path) -> None:
    path = _plan(tmp_path, {"runs": [
        {"notebook": "nb/dummy.ipynb", "name": "ok"},
        {"notebook": "nb/dummy.ipynb", "parameters": {"lerning_rate": 0.1}},
    ]})
    with pytest.raises(KitError) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(
        "plan.yaml: runs[1] (dummy): parameter 'lerning_rate' is not defined in the notebook's parameters cell "
        "(did you mean 'learning_rate'?); known: output_dir, learning_rate, steps"
    ), message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("learning_rate", "fast", r"parameter 'learning_rate' expects float \(the notebook's default is 0\.1\), got str 'fast'"),
        ("learning_rate", "2e-4", r"parameter .learning_rate. .*YAML reads 2e-4 as text: write it with a dot, e\.g\. 0\.0002"),
        ("fail", 1, r"parameter 'fail' expects bool \(the notebook's default is False\), got int 1"),
        ("steps", 2.5, r"parameter 'steps' expects int"),
        ("steps", True, r"parameter 'steps' expects int .* got bool True"),
        ("tag", 3, r"parameter 'tag' expects str"),
    ],
)
def test_wrong_type_is_rejected(tmp_path: Path, nb: Path, key: str, value: object, expected: str) -> None:
    path = _plan(tmp_path, {"runs": [{"notebook": "nb/dummy.ipynb", "name": "t", "parameters": {key: value}}]})
    with pytest.raises(KitError, match=r"^plan\.yaml: runs\[0\] \(t\): " + expected):
        load_plan(path)


def test_type_rules() -> None:
    assert type_problem(3, 0.5) is None  # an int where a float is expected
    assert type_problem([1], None) is None and type_problem({"a": 1}, None) is None  # None default: anything
    assert type_problem([1, 2], [3]) is None and type_problem({"a": 1}, {}) is None
    assert type_problem("x", ["a"]) is not None and type_problem([1], {}) is not None
    assert type_problem(0, False) is not None and type_problem(None, 3) is not None


def test_defaults_and_grid_names_must_exist_somewhere(tmp_path: Path, nb: Path) -> None:
    with pytest.raises(KitError, match=r"plan\.yaml: defaults: parameter 'max_stepz' is not defined in any run's"):
        load_plan(_plan(tmp_path, {"defaults": {"max_stepz": 1}, "runs": [{"notebook": "nb/dummy.ipynb"}]}))
    with pytest.raises(KitError, match=r"grid: parameter 'steps' for runs\[0\] \(dummy\) expects int"):
        load_plan(_plan(tmp_path, {"grid": {"steps": [1, "two"]}, "runs": [{"notebook": "nb/dummy.ipynb"}]}))
    with pytest.raises(KitError, match=r"set in the run and swept by the grid"):
        load_plan(_plan(tmp_path, {"grid": {"steps": [1, 2]},
                                   "runs": [{"notebook": "nb/dummy.ipynb", "parameters": {"steps": 3}}]}))


def test_defaults_apply_only_where_defined(tmp_path: Path, nb: Path) -> None:
    other = write_notebook(tmp_path / "nb" / "other.ipynb", parameters='output_dir = "o"\nsteps = 2\n', body="pass")
    assert other.exists()
    plan = load_plan(_plan(tmp_path, {"defaults": {"learning_rate": 0.3, "steps": 5},
                                      "runs": [{"notebook": "nb/dummy.ipynb"}, {"notebook": "nb/other.ipynb"}]}))
    assert plan.runs[0].written == {"learning_rate": 0.3, "steps": 5}
    assert plan.runs[1].written == {"steps": 5}


def test_run_reference_resolution_and_order(tmp_path: Path, nb: Path) -> None:
    plan = load_plan(
        _plan(tmp_path, {"runs": [
            {"notebook": "nb/dummy.ipynb", "name": "eval", "parameters": {"upstream": "{run:train}"}},
            {"notebook": "nb/dummy.ipynb", "name": "train"},
        ]}),
        tmp_path / "out",
    )
    evaluate, train = plan.runs
    assert evaluate.dependencies == ["train"]
    assert evaluate.parameters["upstream"] == str(train.run_dir / "output")
    assert evaluate.written["upstream"] == "{run:train}"
    assert [s.name for s in execution_order(plan.runs)] == ["train", "eval"]


def test_run_reference_inherits_the_grid(tmp_path: Path, nb: Path) -> None:
    plain = write_notebook(tmp_path / "nb" / "eval.ipynb", parameters='output_dir = "o"\nupstream = None\n', body="pass")
    assert plain.exists()
    plan = load_plan(_plan(tmp_path, {"grid": {"learning_rate": [0.1, 0.2]}, "runs": [
        {"notebook": "nb/dummy.ipynb", "name": "train"},
        {"notebook": "nb/eval.ipynb", "name": "eval", "parameters": {"upstream": "{run:train}"}},
        {"notebook": "nb/eval.ipynb", "name": "pinned", "parameters": {"upstream": "{run:train-learning_rate=0.2}"}},
    ]}), tmp_path / "out")
    by_name = {s.name: s for s in plan.runs}
    assert list(by_name) == ["train-learning_rate=0.1", "train-learning_rate=0.2", "eval-learning_rate=0.1",
                             "eval-learning_rate=0.2", "pinned"]
    assert by_name["eval-learning_rate=0.2"].dependencies == ["train-learning_rate=0.2"]
    assert "learning_rate" not in by_name["eval-learning_rate=0.2"].written  # the eval notebook does not take it
    assert by_name["pinned"].parameters["upstream"] == str(by_name["train-learning_rate=0.2"].output_dir)


def test_unknown_reference_and_cycle(tmp_path: Path, nb: Path) -> None:
    with pytest.raises(KitError, match=r"runs\[0\] \(eval\): parameter 'upstream' refers to \{run:trian\}, but no run"):
        load_plan(_plan(tmp_path, {"runs": [
            {"notebook": "nb/dummy.ipynb", "name": "eval", "parameters": {"upstream": "{run:trian}"}},
            {"notebook": "nb/dummy.ipynb", "name": "train"},
        ]}))
    with pytest.raises(KitError, match=r"plan\.yaml: the runs refer to each other in a cycle: .*a → .*b → .*a"):
        load_plan(_plan(tmp_path, {"runs": [
            {"notebook": "nb/dummy.ipynb", "name": "a", "parameters": {"upstream": "{run:b}"}},
            {"notebook": "nb/dummy.ipynb", "name": "b", "parameters": {"upstream": "{run:a}"}},
        ]}))
    with pytest.raises(KitError, match=r"cycle"):
        load_plan(_plan(tmp_path, {"runs": [
            {"notebook": "nb/dummy.ipynb", "name": "self", "parameters": {"upstream": "{run:self}"}}]}))


def test_duplicate_names_rejected(tmp_path: Path, nb: Path) -> None:
    with pytest.raises(KitError, match=r"runs\[1\] \(dummy\): runs\[0\] has the same name; give each entry a distinct"):
        load_plan(_plan(tmp_path, {"runs": [{"notebook": "nb/dummy.ipynb"}, {"notebook": "nb/dummy.ipynb"}]}))


def test_dry_run_prints_and_runs_nothing(tmp_path: Path, nb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _plan(tmp_path, {"grid": {"steps": [2, 3]}, "runs": [
        {"notebook": "nb/dummy.ipynb", "name": "train"},
        {"notebook": "nb/dummy.ipynb", "name": "eval", "parameters": {"upstream": "{run:train}"}},
    ]})
    out = tmp_path / "out"
    assert main(["batch", str(path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "4 runs" in text and "dry run" in text
    assert re.search(r"^03-eval-steps=2-[0-9a-f]{8}  ", text, re.M)
    assert re.search(r"after: 01-train-steps=2-[0-9a-f]{8}$", text, re.M)
    assert 'upstream="' + str(out.resolve()) in text
    assert not out.exists()


def test_cli_reports_plan_errors_without_traceback(tmp_path: Path, nb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _plan(tmp_path, {"runs": [{"notebook": "nb/dummy.ipynb", "parameters": {"nope": 1}}]})
    assert main(["batch", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "parameter 'nope' is not defined" in err and "Traceback" not in err


def test_parameters_cell_literal_defaults(nb: Path) -> None:
    from kit.notebooks.files import notebook_parameters

    assert list(notebook_parameters(nb)) == [line.split(" = ")[0] for line in PARAMETERS.splitlines()]
