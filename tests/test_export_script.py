"""``kit export-script``: a notebook as a plain script with the same parameters, and a 2-process DDP run of an
exported training notebook on CPU (gloo) that trains, then saves one adapter and one ``metrics.json``."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_batch_helpers import write_notebook

from kit.cli import main
from kit.notebooks.files import notebook_parameters

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "UNSLOTH_DISABLE_STATISTICS": "1", "KIT_HEADLESS": "1", "TQDM_DISABLE": "1"}


def export(notebook: Path, script: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["export-script", str(notebook), "-o", str(script)]) == 0
    return capsys.readouterr().out


def run(script: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **OFFLINE, **(env or {})}, cwd=cwd)


def test_options_have_the_notebooks_names_and_defaults(repo_root: Path, tmp_path: Path, capsys) -> None:
    notebook = repo_root / "notebooks" / "01_alpaca_sft.ipynb"
    printed = export(notebook, tmp_path / "train.py", capsys)
    assert "left out cell" in printed and "(install)" in printed and "main process only" in printed
    done = run(tmp_path / "train.py", "--help")
    assert done.returncode == 0, done.stderr
    help_text = " ".join(done.stdout.split())
    for name, default in notebook_parameters(notebook).items():
        assert f"--{name} VALUE" in help_text and f"(default: {default!r})" in help_text
    script = (tmp_path / "train.py").read_text()
    assert "_kit_install()" not in script  # the install cell is left out
    assert "if is_main_process():" in script and "    model.save_pretrained(output_dir)" in script


def test_script_reads_options_skips_display_and_guards_writes(tmp_path: Path, capsys) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb")
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells[1:1] = [
        nbformat.v4.new_code_cell("# Install the kit.\nraise SystemExit('the install cell ran')"),
        nbformat.v4.new_code_cell("display(not_defined_anywhere)"),  # display only
        nbformat.v4.new_code_cell("%matplotlib inline\nimport math"),
    ]
    nb.cells.append(nbformat.v4.new_code_cell(
        "from kit.runinfo import write_metrics\n"
        "write_metrics(output_dir + '/kit', notebook='nb', seed=seed, parameters={'tag': tag, 'fail': fail})"
    ))
    nbformat.write(nb, str(notebook))
    printed = export(notebook, tmp_path / "nb.py", capsys)
    assert "(display only)" in printed and "(install)" in printed
    out = tmp_path / "out"
    done = run(tmp_path / "nb.py", "--learning_rate", "0.5", "--steps", "3", "--output-dir", str(out),
               "--tag", "3", "--fail", "false", "--upstream", "None")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parameters"] == {"learning_rate": 0.5, "steps": 3}
    assert [p["step"] for p in metrics["loss_trace"]] == [1, 2, 3]
    assert json.loads((out / "kit" / "metrics.json").read_text())["parameters"] == {"tag": "3", "fail": False}
    other = tmp_path / "rank1"
    done = run(tmp_path / "nb.py", "--output_dir", str(other), env={"RANK": "1"})
    assert done.returncode == 0, done.stderr
    assert (other / "metrics.json").is_file() and not (other / "kit").exists()  # guarded: main process only
    done = run(tmp_path / "nb.py", "--steps", "many")
    assert done.returncode == 2 and "--steps" in done.stderr and "invalid int value" in done.stderr


def test_two_process_ddp_on_cpu_trains_and_saves_once(repo_root: Path, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    """accelerate 1.15's ``--cpu`` starts one process unless mpirun is used; ``--multi_gpu`` on a machine
    without CUDA starts N processes through torchrun and trains with DDP over gloo on CPU."""
    export(repo_root / "notebooks" / "01_alpaca_sft.ipynb", tmp_path / "train.py", capsys)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(tmp_path / "train.py"),
        "--model_name", str(tiny_model_dir), "--load_in_4bit", "false", "--dtype", "float32",
        "--max_seq_length", "256", "--lora_r", "8", "--max_steps", "4", "--per_device_train_batch_size", "2",
        "--gradient_accumulation_steps", "1", "--data_path", "data/alpaca/alpaca_en.json", "--eval_samples", "2",
        "--eval_max_new_tokens", "8", "--output_dir", str(out),
    ]
    env = {**os.environ, **OFFLINE, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=repo_root)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert len(re.findall(r"Unsloth \(CPU\): \w+ on \d+ CPU thread", log)) == 2  # both processes loaded the model through Unsloth's CPU path
    assert log.count("[metrics] ") == 1  # ...and only the main one wrote
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and math.isfinite(metrics["final_loss"])
    assert sorted(p.name for p in out.glob("adapter_model*")) == ["adapter_model.safetensors"]
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 8
