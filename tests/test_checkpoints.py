"""Checkpoints and resume: an interrupted run continued from its checkpoint repeats an uninterrupted one exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

import kit.training.model  # noqa: F401  -- unsloth before trl, as in the notebooks
from kit.errors import KitError
from kit.training.config import checkpoint_args, resolve_checkpoint, sft_config, tracking_args

STEPS, SAVE_EVERY, STOP_AFTER = 6, 2, 3


class Interrupted(RuntimeError):
    """Stands in for a lost Colab runtime or a Ctrl-C."""


def _trainer(tiny_model_dir: Path, output_dir: Path, callbacks: list | None = None, **config):
    from datasets import Dataset
    from trl import SFTTrainer

    from kit.training.config import seed_everything
    from kit.training.methods import load_for_training

    seed_everything(3407)
    model, tokenizer, _ = load_for_training(str(tiny_model_dir), max_seq_length=64, load_in_4bit=False,
                                            dtype="float32", lora_r=4, lora_alpha=8, seed=3407)
    texts = [f"Question {i}: what is {i} plus {i}? Answer: {2 * i}." for i in range(40)]
    args = sft_config(output_dir, max_seq_length=64, max_steps=STEPS, per_device_train_batch_size=2,
                      gradient_accumulation_steps=1, learning_rate=5e-3, warmup_steps=1, optim="adamw_torch",
                      save_steps=SAVE_EVERY, disable_tqdm=True, **config)
    return SFTTrainer(model=model, processing_class=tokenizer, train_dataset=Dataset.from_dict({"text": texts}),
                      args=args, callbacks=callbacks or [])


def _losses(trainer) -> list[tuple[int, float]]:
    return [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]


def test_interrupted_then_resumed_equals_uninterrupted(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import TrainerCallback

    whole = _trainer(tiny_model_dir, tmp_path / "whole")
    whole.train()
    reference = _losses(whole)
    assert [s for s, _ in reference] == list(range(1, STEPS + 1))

    class StopAfter(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == STOP_AFTER:
                raise Interrupted(f"runtime lost after step {STOP_AFTER}")

    out = tmp_path / "interrupted"
    first = _trainer(tiny_model_dir, out, callbacks=[StopAfter()])
    with pytest.raises(Interrupted):
        first.train()
    assert (out / f"checkpoint-{SAVE_EVERY}" / "trainer_state.json").is_file()
    assert not (out / f"checkpoint-{2 * SAVE_EVERY}").exists()

    resumed = _trainer(tiny_model_dir, out)
    checkpoint = resolve_checkpoint("latest", out)
    assert checkpoint == str(out / f"checkpoint-{SAVE_EVERY}")
    resumed.train(resume_from_checkpoint=checkpoint)
    after = _losses(resumed)
    assert [s for s, _ in after] == [s for s, _ in reference]
    for (step, got), (_, want) in zip(after, reference):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-7), f"step {step}: resumed {got} vs uninterrupted {want}"
    # The steps after the checkpoint were really trained again, not copied: the first run stopped at step 3.
    assert resumed.state.global_step == STEPS


def test_resolve_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert resolve_checkpoint(None, tmp_path) is None
    assert resolve_checkpoint("latest", tmp_path) is None
    assert capsys.readouterr().out.count("\n") == 1  # one line: nothing to resume, starts at step 0
    for step in (5, 40, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-99").mkdir()  # no trainer_state.json: a half-written checkpoint is not resumed
    (tmp_path / "checkpoint-x").mkdir()
    assert resolve_checkpoint("latest", tmp_path) == str(tmp_path / "checkpoint-40")  # numeric, not text, order
    assert resolve_checkpoint(True, tmp_path) == str(tmp_path / "checkpoint-40")
    assert resolve_checkpoint(str(tmp_path / "checkpoint-5"), tmp_path) == str(tmp_path / "checkpoint-5")
    with pytest.raises(KitError, match="not a checkpoint folder"):
        resolve_checkpoint(str(tmp_path / "nowhere"), tmp_path)


def test_save_steps_switches_checkpoints_on(tmp_path: Path) -> None:
    assert checkpoint_args(0) == {"save_strategy": "no"}
    assert checkpoint_args(None) == {"save_strategy": "no"}
    config = sft_config(tmp_path, save_steps=25)
    assert str(config.save_strategy.value if hasattr(config.save_strategy, "value") else config.save_strategy) == "steps"
    assert config.save_steps == 25 and config.save_total_limit == 2
    assert str(getattr(sft_config(tmp_path).save_strategy, "value", sft_config(tmp_path).save_strategy)) == "no"


def test_report_to_without_the_package_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    assert tracking_args("wandb") == {"report_to": "none"}
    assert "pip install 'wandb'" in capsys.readouterr().out
    assert tracking_args(None) == {"report_to": "none"}
    assert tracking_args("none") == {"report_to": "none"}


def test_tensorboard_writes_event_files_offline(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is in the kit's [tracking] extra")
    trainer = _trainer(tiny_model_dir, tmp_path / "tb", report_to="tensorboard")
    trainer.args.max_steps = 2
    trainer.train()
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert "train/loss" in accumulator.Tags()["scalars"]
    assert len(accumulator.Scalars("train/loss")) == 2
