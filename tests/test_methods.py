"""The fine-tuning methods (kit.training.methods): refusals before loading, each CPU method building, training one step,
saving and reloading on the tiny model, the memory estimate per method, notebook 06's table, and the accelerate
configs that `kit export-script` writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kit.errors import KitError
from kit.training.memory import METHODS as ESTIMATE_METHODS
from kit.training.memory import compare_to_measured, estimate_for_model, estimate_memory
from kit.training.methods import (
    METHODS,
    check_method,
    estimate_method,
    get_method,
    learning_rate_for,
    why_not,
)

CPU_METHODS = ["lora", "dora", "full", "prefix", "prompt", "ia3", "loha", "lokr"]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def test_registry_has_every_method_the_issue_names() -> None:
    assert {"lora", "qlora", "lora_8bit", "full", "dora", "prefix", "prompt", "ia3"} <= set(METHODS)
    assert get_method(" LoRA ").name == "lora"
    assert get_method("full").saves == "checkpoint" and get_method("dora").saves == "adapter"
    # every method has an estimate, and full fine-tuning's default learning rate is far below LoRA's
    assert all(m.estimate_as in ESTIMATE_METHODS for m in METHODS.values())
    assert get_method("full").learning_rate <= get_method("lora").learning_rate / 4
    assert get_method("prefix").learning_rate > get_method("lora").learning_rate


def test_unknown_method_is_one_line() -> None:
    with pytest.raises(KitError) as err:
        get_method("lorax")
    assert "\n" not in str(err.value) and "lora" in str(err.value) and "full" in str(err.value)


@NO_CUDA
@pytest.mark.parametrize("name", ["qlora", "lora_8bit"])
def test_bitsandbytes_methods_refused_before_loading(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import kit.training.model

    def must_not_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("loaded a model for a method that cannot run here")

    monkeypatch.setattr(kit.training.model, "load_model", must_not_load)
    with pytest.raises(KitError) as err:
        kit.training.methods.load_for_training("no/such-model", method=name)
    message = str(err.value)
    assert "\n" not in message
    assert f"{name} needs CUDA + bitsandbytes" in message and "never swapped silently" in message


def test_bitsandbytes_missing_on_a_gpu_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a))
    assert "bitsandbytes is not installed" in (why_not("qlora") or "")
    assert why_not("lora") is None


def test_learning_rates_default_and_override() -> None:
    assert learning_rate_for("full") == get_method("full").learning_rate
    assert learning_rate_for("full", {"full": 1e-5}) == 1e-5
    assert learning_rate_for("lora", {"full": 1e-5}) == get_method("lora").learning_rate
    with pytest.raises(KitError, match="positive number"):
        learning_rate_for("lora", {"lora": -1})


def test_plan_marks_bitsandbytes_methods_skipped_without_loading(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from kit.evaluation import methods_compare

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows_plan = methods_compare.plan(["qlora", "lora_8bit", "lora"], {"lora": 1e-3})
    assert [r["runs"] for r in rows_plan] == [False, False, True]
    assert rows_plan[2]["learning_rate"] == 1e-3
    out = capsys.readouterr().out
    assert out.count("skipped: needs CUDA + bitsandbytes") == 2

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("ran a skipped method")

    monkeypatch.setattr(methods_compare, "run_method", must_not_run)
    rows = methods_compare.compare(rows_plan[:2])
    assert [r["status"] for r in rows] == ["skipped: needs CUDA + bitsandbytes"] * 2
    with pytest.raises(KitError, match="unknown method"):
        methods_compare.plan(["lora"], {"lorra": 1e-3})
    with pytest.raises(KitError, match="empty"):
        methods_compare.parse_methods([])


def test_estimate_covers_every_method() -> None:
    totals = {m: estimate_memory("7B", m, 2048, 1, vocab_size=32000).total_gb
              for m in ESTIMATE_METHODS if m != "inference"}
    assert totals["full"] > totals["lora"] > totals["lora_8bit"] > totals["qlora"]
    trainable = {m: estimate_memory("7B", m, 2048, 1).trainable_params for m in ESTIMATE_METHODS}
    assert trainable["prompt"] < trainable["prefix"] < trainable["lora"] < trainable["dora"] < trainable["loha"]
    assert trainable["ia3"] < trainable["lora"] and trainable["lokr"] < trainable["lora"]
    assert estimate_method("lora", load_in_4bit=True) == "qlora"
    assert estimate_method("lora", load_in_4bit=False) == "lora"
    assert estimate_method("full", load_in_4bit=True) == "full"
    prefix = estimate_memory("7B", "prefix", 2048, 1)
    assert prefix.assumptions["checkpointing"] is False and prefix.assumptions["seq_len_trained"] > 2048


@NO_CUDA
def test_compare_to_measured_reports_peak_rss_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    estimate = estimate_memory("135M", "lora", 256, 8, device="cpu")
    result = compare_to_measured(estimate)
    assert result["measured"] == "cpu_peak_rss" and result["measured_gb"] > 0.05
    assert "peak RSS" in capsys.readouterr().out
    assert compare_to_measured(estimate, measured_peak_gb=1.0)["measured"] == "given"


@pytest.fixture(scope="module")
def train_rows() -> object:
    from kit.data import load_data, train_holdout_split

    dataset, _ = load_data(str(Path(__file__).resolve().parents[1] / "data" / "alpaca" / "alpaca_en.json"), "alpaca")
    train, holdout = train_holdout_split(dataset, holdout=0.2, seed=3407)
    return train.select(range(8)), holdout.select(range(2))


def _logits(model: object, tokenizer: object) -> torch.Tensor:
    batch = tokenizer(["Give three tips for staying healthy."], return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return model(**batch).logits.float()


@pytest.mark.parametrize("name", CPU_METHODS)
def test_cpu_method_builds_trains_saves_and_reloads(name: str, tiny_model_dir: Path, tmp_path: Path,
                                                     train_rows: object, capsys: pytest.CaptureFixture[str]) -> None:
    from trl import SFTTrainer

    from kit.formatting.chat_format import sft_dataset
    from kit.training import methods
    from kit.training.config import sft_config
    from kit.training.methods import load_for_training

    model, tokenizer, summary = load_for_training(str(tiny_model_dir), max_seq_length=256, load_in_4bit=False,
                                                  dtype="float32", lora_r=8, lora_alpha=16, method=name)
    out = capsys.readouterr().out
    assert (name == "full") == ("full fine-tuning saves every weight" in out)
    # the memory estimate counts the parameters this method really trains
    estimate = estimate_for_model(str(tiny_model_dir), get_method(name).estimate_as, 256, 2, lora_r=8, dtype="float32")
    if name == "full":  # the shape formula leaves out Qwen2's q/k/v biases (256 of 205k parameters)
        assert abs(estimate.trainable_params - summary.trainable_params) <= 0.01 * summary.trainable_params
    else:
        assert estimate.trainable_params == summary.trainable_params
    assert 0 < summary.trainable_params <= summary.total_params
    first = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    train, _ = train_rows
    trainer = SFTTrainer(model=model, processing_class=tokenizer,
                         train_dataset=sft_dataset(tokenizer, train, "auto", max_seq_length=256),
                         args=sft_config(str(tmp_path / "run"), max_seq_length=256, max_steps=1, warmup_steps=0,
                                         per_device_train_batch_size=2, gradient_accumulation_steps=1,
                                         learning_rate=learning_rate_for(name), **methods.trainer_overrides(name)))
    trainer.train()
    assert any(not torch.equal(first[n], p) for n, p in model.named_parameters() if n in first), "nothing trained"
    trained = _logits(model, tokenizer)
    folder = tmp_path / name
    size = methods.save(model, tokenizer, str(folder), name)
    assert size > 0
    saved = {p.name for p in folder.iterdir()}
    if name == "full":
        assert "config.json" in saved and "model.safetensors" in saved and "adapter_config.json" not in saved
    else:
        assert "adapter_config.json" in saved and "adapter_model.safetensors" in saved
    reloaded, reloaded_tokenizer = methods.reload(str(folder), name, max_seq_length=256, dtype="float32")
    assert torch.allclose(_logits(reloaded, reloaded_tokenizer), trained, atol=1e-4)


@pytest.mark.parametrize("name", ["lora", "dora"])
def test_notebook_05_finds_lora_and_dora_adapters(name: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    from kit.evaluation.adapters import find_adapter
    from kit.training import methods
    from kit.training.methods import load_for_training

    model, tokenizer, _ = load_for_training(str(tiny_model_dir), max_seq_length=128, load_in_4bit=False,
                                            dtype="float32", lora_r=4, method=name)
    methods.save(model, tokenizer, str(tmp_path / name), name)
    folder, reason = find_adapter(str(tmp_path / name))
    assert folder == tmp_path / name and reason == ""
    assert json.loads((folder / "adapter_config.json").read_text())["use_dora"] is (name == "dora")


def test_base_weights_is_a_no_op_for_full(tiny_model_dir: Path) -> None:
    from kit.training.methods import base_weights, load_for_training

    model, tokenizer, _ = load_for_training(str(tiny_model_dir), max_seq_length=128, load_in_4bit=False,
                                            dtype="float32", method="full")
    with base_weights(model):
        assert _logits(model, tokenizer).shape[-1] > 0


def test_compare_runs_scores_and_writes_the_methods_table(tiny_model_dir: Path, tmp_path: Path, train_rows: object,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from kit.evaluation import methods_compare
    from kit.runinfo import write_metrics

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    train, holdout = train_rows
    rows_plan = methods_compare.plan(["lora", "qlora", "full"], {"lora": 5e-3})
    before = methods_compare.score_base(str(tiny_model_dir), holdout, "auto", max_seq_length=128, dtype="float32",
                                        max_new_tokens=4)
    rows = methods_compare.compare(rows_plan, model_name=str(tiny_model_dir), train_records=train,
                                   eval_records=holdout, before=before, template="auto",
                                   output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2,
                                   gradient_accumulation_steps=1, max_seq_length=128, dtype="float32", seed=3407,
                                   lora_r=4, lora_alpha=8, eval_max_new_tokens=4)
    assert [r["status"] for r in rows] == ["completed", "skipped: needs CUDA + bitsandbytes", "completed"]
    lora, full = rows[0], rows[2]
    # the same before answers for every method, paired with each one's after
    assert lora["eval"]["before"] == full["eval"]["before"] and lora["eval"]["n"] == 2
    assert lora["trainable_params"] < full["trainable_params"] == full["total_params"]
    assert lora["peak_memory_mb"] > 0 and lora["train_tokens"] > 0 and lora["tokens_per_s"] > 0
    assert full["size_on_disk_mb"] > lora["size_on_disk_mb"] > 0
    assert lora["learning_rate"] == 5e-3 and full["learning_rate"] == get_method("full").learning_rate
    frame = methods_compare.table(rows)
    assert list(frame.index) == ["lora", "qlora", "full"] and frame.loc["qlora", "status"].startswith("skipped")
    sentence = methods_compare.advice(rows)
    assert "full" in sentence and "lora" in sentence and "%" in sentence
    assert methods_compare.advice(rows, method="dora").startswith("No dora-vs-full advice")
    methods_compare.plot(rows, path=tmp_path / "methods.png")
    assert (tmp_path / "methods.png").stat().st_size > 0
    trainer, block = methods_compare.metrics_payload(rows)
    path = write_metrics(tmp_path, notebook="06_methods_compared", trainer=trainer, eval=block)
    methods_compare.add_methods_table(path, rows)
    payload = json.loads(path.read_text())
    assert payload["eval"]["method"] == "lora" and payload["loss_trace"]
    assert [r["method"] for r in payload["methods"]] == ["lora", "qlora", "full"]
    assert payload["methods"][2]["eval"]["gain"]["rouge_l"]["ci95"]


def test_a_failing_method_is_a_row_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from kit.evaluation import methods_compare

    def boom(name: str, **kwargs: object) -> None:
        raise RuntimeError("shapes do not match\nsecond line")

    monkeypatch.setattr(methods_compare, "run_method", boom)
    rows = methods_compare.compare([{"method": "prefix", "runs": True, "reason": None, "learning_rate": 1e-2,
                                     "summary": "prefix"}])
    assert rows[0]["status"] == "failed: RuntimeError: shapes do not match"
    with pytest.raises(KitError, match="no method completed"):
        methods_compare.metrics_payload(rows)


def test_check_method_returns_the_entry() -> None:
    assert check_method("dora").name == "dora"


def test_export_script_writes_accelerate_configs_that_accelerate_loads(tmp_path: Path) -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    from kit.cli import main

    root = Path(__file__).resolve().parents[1]
    assert main(["export-script", str(root / "notebooks" / "01_alpaca_sft.ipynb"), "-o", str(tmp_path / "train.py")]) == 0
    parser = launch_command_parser()
    seen = {}
    for name in ("accelerate_deepspeed_zero3.yaml", "accelerate_fsdp.yaml"):
        path = tmp_path / name
        config = load_config_from_file(str(path))  # unknown keys would raise here
        assert config.num_processes == 2 and config.mixed_precision == "bf16"
        args, _, _ = _validate_launch_command(parser.parse_args(["--config_file", str(path), "train.py"]))
        seen[name] = args
    zero3, fsdp = seen["accelerate_deepspeed_zero3.yaml"], seen["accelerate_fsdp.yaml"]
    assert zero3.use_deepspeed and int(zero3.zero_stage) == 3 and not zero3.use_fsdp
    assert fsdp.use_fsdp and int(fsdp.fsdp_version) == 2 and not fsdp.use_deepspeed


@pytest.mark.notebooks
def test_notebook_06_runs_headless_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    import yaml

    from kit.cli import main

    root = Path(__file__).resolve().parents[1]
    plan = {
        "defaults": {"model_name": str(tiny_model_dir), "dtype": "float32", "max_seq_length": 128, "lora_r": 4,
                     "lora_alpha": 8, "seed": 3407},
        "env": {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        "runs": [{"name": "methods", "notebook": str(root / "notebooks" / "06_methods_compared.ipynb"),
                  "parameters": {"data_path": str(root / "data" / "alpaca" / "alpaca_en.json"),
                                 "methods": ["lora", "qlora", "full", "prefix"], "learning_rates": {"lora": 5e-3},
                                 "max_steps": 2, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                                 "eval_samples": 2, "eval_max_new_tokens": 4}}],
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    assert main(["batch", str(path), "--out", str(tmp_path / "out")]) == 0
    (run,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir() and p.name.endswith(tuple("0123456789abcdef"))
              and (p / "manifest.json").exists()]
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    rows = {r["method"]: r for r in metrics["methods"]}
    assert rows["qlora"]["status"] == "skipped: needs CUDA + bitsandbytes"
    assert all(rows[m]["status"] == "completed" and rows[m]["eval"]["n"] == 2 for m in ("lora", "full", "prefix"))
    assert rows["lora"]["learning_rate"] == 5e-3 and metrics["eval"]["method"] == "lora"
    assert (run / "output" / "methods.png").is_file() and (run / "output" / "full" / "config.json").is_file()
    executed = (run / "06_methods_compared.ipynb").read_text(encoding="utf-8")
    assert "lora reached" in executed or "not clearly above 0" in executed
